!> tartes_emulator: what SURFEX-Crocus takes from TARTES (the broadband albedo, the shortwave
!> absorbed in each snow layer, and what reaches the soil), computed by the TARTES-Emulator's
!> energy-budget model `optical_budget` (models.py, class OpticalBudget) in standard Fortran 2008,
!> with no dependency: the weights are read from the plain-text file
!> that `python export.py --model MODEL.pt --out DIR` writes (DIR/emulator_weights.txt).
!>
!>     use tartes_emulator
!>     call tartes_emulator_load('emulator_weights.txt')                 ! once, before any call
!>     call tartes_emulator_budget(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
!>                                 albedo, absorbed, soil [, status, message] &
!>                                 [, soil_albedo=soil_albedo] [, cos_zenith=cos_zenith])
!>     call tartes_emulator_crocus(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
!>                                 psnowalb, pradsink, pradxs [, status, message] &
!>                                 [, soil_albedo=soil_albedo] [, cos_zenith=cos_zenith])
!>     call tartes_emulator_outside_domain(dz, ssa, density, soot, dust, cos_illum, direct_sw, &
!>                                         diffuse_sw, outside [, status, message] &
!>                                         [, soil_albedo=soil_albedo] [, cos_zenith=cos_zenith])
!>
!> and, for Crocus, a drop-in for SURFEX's SNOWCRO_TARTES with its 27 arguments (the section "The
!> drop-in for Crocus" at the end; docs/crocus_coupling.md), which loads the weights of the file
!> named by TARTES_EMULATOR_WEIGHTS at its first call when tartes_emulator_load was not called:
!>
!>     call tartes_emulator_snowcro_tartes(PSNOWGRAN1, PSNOWGRAN2, ..., PSPEC_DIF, OATMORAD [, PSNOWALB_FB])
!>     call tartes_emulator_register_fallback(SNOWCRO_TARTES)  ! optional: it computes the points
!>                                                              ! outside the emulator's domain
!>
!> Arrays are assumed-shape, real(kind=8) (selected_real_kind(15, 307)): layers (npts, nlayers), 1 <= nlayers <= 50,
!> top layer first, dz = 0 below the pack (a layer is present where dz > 0; the other values of
!> an absent layer are ignored); dz in m, ssa in m2 kg-1, density in kg m-3, soot and dust in
!> kg kg-1 (Crocus SNOWIMP1, SNOWIMP2); cos_illum (the cosine of the angle between the sun and the
!> normal to the snow surface, Crocus PANGL_ILLUM), direct_sw and diffuse_sw (W m-2) of size npts.
!> Two optional keyword arguments of size npts come after the others, so that calls written
!> before them keep working: soil_albedo, the albedo of the ground under the snow (Crocus PALB),
!> in [0, 1], 0.2 at every point when absent (the labeller's default); cos_zenith, the cosine of
!> the solar zenith angle on the horizontal (cos(PZENITH)), in [-1, 1] or NaN where it is not
!> known; absent, it is not known anywhere (the rules that need it do not apply), as Python's
!> cos_zenith=None.
!>
!> Crocus's light rules (docs/labels.md, step 0), as the Python model applies them before its
!> network: the sun behind the slope (cos_illum < 0.0017) makes all the shortwave diffuse;
!> elsewhere, where the forcing has no diffuse light (diffuse_sw = 0) and cos_zenith is known, the
!> shortwave SW = direct_sw + diffuse_sw is split by Marie Dumont's diffuse fraction f of
!> cos_zenith: diffuse f SW, direct (1 - f) SW. The soil albedo is the lower boundary of the
!> diffuse sweeps at every wavelength (under the whole pack; the near-infrared wavelengths computed
!> on the top layers only see semi-infinite snow where the pack goes on below them) and the last
!> feature of the network.
!>
!> SURFEX's truncation of deep layers (docs/labels.md, step 2, point 3), in the physics of a model
!> trained with it (its setting `truncation`, which the weights file gives with the threshold
!> tau_truncation = 30): at each wavelength, from the second layer on, the first layer where the
!> cumulative ke tau* from the surface through it exceeds 30 is dropped with all below it; the
!> kept layers lie on a white floor (co-albedo 0 under them), and the dropped layers and the soil
!> absorb nothing at that wavelength (features.TwoStreamOptics.truncated and diffuse_coalbedo).
!> The depths are summed and compared in double precision, as the rest: only a depth within the
!> float32 model's rounding of 60 (a few 1e-6 relative) could be cut by one and not the other.
!> Without the setting, the sweeps go down to the soil (or to the semi-infinite snow under the
!> near-infrared wavelengths' top layers), as above.
!>
!> tartes_emulator_budget computes, point by point, what OpticalBudget.forward computes (Crocus's
!> light and layer rules, the two-stream layer optics and diffuse sweeps of features.TwoStreamOptics, the
!> features, their normalisation, the MLP with SiLU, the sigmoid albedos and softmax mixtures): the
!> features are, in order, per wavelength the log co-albedo of the pack, then per wavelength the
!> share its top layer absorbs; per wavelength and each of the top n_described layers log(1 - r),
!> then in the same order 1 - f2; per wavelength and each of the top n_depths layers the log of the
!> optical depth 2 ke tau* from the surface through it (summed from the top in single precision, as
!> the Python model sums them in float32; floored at optical_depth_floor); then cos_illum, the log
!> snow depth and the soil albedo (the weights file gives n_described, n_depths and the floors). The
!> optics, sweeps, features and network are computed in single precision (the kind wp), as the
!> Python model computes them in float32, the decisions (checks, light and layer rules, truncation
!> depths, dark points) and the final budget in double precision. It equals the float32 model (what
!> Emulator.energy_budget runs) to its rounding, a few 1e-7 (tests/test_fortran.py). Its outputs
!> are fractions of the incident shortwave: albedo (npts), absorbed (npts, nlayers), soil (npts),
!> with albedo + sum(absorbed) + soil = 1 to double rounding, every fraction >= 0. Absent layers
!> absorb 0 (the Python API, Emulator.energy_budget, gives NaN there; Crocus's arrays hold 0).
!>
!> Night and no light (docs/labels.md): a dark point, direct_sw + diffuse_sw <= 1e-8 W m-2 or
!> cos_zenith (when known) <= 1e-8, where Crocus does not call TARTES, gets albedo 1, absorbed 0
!> in every layer and soil 0 (and so
!> pradsink = 0, pradxs = 0), as in every interface of the project. A point without snow (every
!> dz = 0) gets the same values: the Python interfaces give NaN there, but this module has no NaN
!> convention, and these values change nothing in a caller's sums.
!> The sweeps of each wavelength stop where the pack becomes optically deep (the product of the
!> layers' two-way diffuse transmissions from the surface below 1e-40: light below 1e-20 of the
!> incident reaches deeper), which changes no fraction beyond double rounding (at most 3e-16 on
!> 5000 sampled and realistic profiles, against the sweeps through every layer); with SURFEX's
!> truncation (below), they stop sooner, where every layer below is dropped, which changes nothing.
!>
!> tartes_emulator_crocus gives Crocus's own outputs, with the sign conventions of
!> docs/labels.md (the project's account of SNOWCRO_CALL_TARTES, SURFEX mode_tartes.F90), SW =
!> direct_sw + diffuse_sw:
!>     psnowalb(p)    = albedo                                               (-)
!>     pradsink(p, l) = -SW * (1 - albedo - sum_{k <= l} absorbed(k))        (W m-2, <= 0)
!>                    = -SW * (soil + sum_{k > l} absorbed(k))  (computed so, never < 0 by rounding)
!>     pradxs(p)      = SW * soil                                            (W m-2)
!> Its arguments are this module's, not SNOWCRO_CALL_TARTES's: SURFEX's source is not available to
!> this project, so the argument order of that routine is not reproduced; a caller passes its
!> arrays by name.
!>
!> The emulator's domain (tartes_emulator_outside_domain): lit points with snow whose inputs lie
!> within the ranges of its training data, and not in SURFEX's clean-up regime (a layer so laden
!> with impurities for its SSA that its single-scattering co-albedo reaches 1 in a band up to
!> 1300 nm, where SURFEX's energy clean-up makes the outputs depend on the flux magnitudes, which
!> no smooth model can follow). The budget routines compute every point all the same; the drop-in
!> hands the points outside to a registered fallback, which computes them exactly.
!>
!> Differences from the Python model, by design:
!>   - a point without snow (every dz = 0) gets the dark-point values above; Emulator.energy_budget
!>     gives NaN there; a layer missing inside the pack (dz = 0 between present layers) is
!>     skipped, as the model does (the labeller refuses it);
!>   - in SURFEX's clean-up regime Emulator.energy_budget gives the labeller's outputs (it can call
!>     it); this module gives its model's, and flags those points outside its domain;
!>   - inputs are validated (below); the Python Emulator raises ValueError on the same faults,
!>     the exported TorchScript and ONNX files check nothing.
!>
!> Invalid input. Every public routine first checks its arguments: the module loaded; array
!> shapes (1 <= nlayers <= 50, every layer array (npts, nlayers), the others npts); dz finite and
!> >= 0; in present layers ssa and density finite and > 0, density <= 917 kg m-3 (pure ice), soot
!> and dust finite and >= 0; cos_illum in [-1, 1]; direct_sw and diffuse_sw finite and >= 0;
!> soil_albedo in [0, 1]; cos_zenith in [-1, 1] or NaN; soil_albedo and cos_zenith of size npts.
!> Without the optional `status` argument a fault prints a message naming the routine, the point
!> and the layer, and stops the program (error stop), as a model stops on a fatal error. With
!> `status` present the routine returns instead: status = TARTES_EMULATOR_OK (0) or one of the
!> codes below, `message` (optional) says why, and the outputs are NaN. A model that wants to
!> handle faults itself (print its own diagnostics, abort through its own routine) passes status.
!>
!> Speed: the loop over points is outermost, in blocks of NB = 32 points: a block's inputs are
!> copied together (and checked), and every inner loop runs over its points, vectorised, so that
!> the sweeps over layers, sequential for one point, run for 32 at once; the network's weights
!> are read once per block. Every local array has a fixed size and lives on the stack (about
!> 0.4 MB per thread; no allocation per call, no temporaries of size npts). The cost is linear in
!> npts and in the number of layers down to the deepest present one. Compile with vectorisation
!> (gfortran -O3 -march=native, or -O2 -fopenmp-simd): the inner loops then call vector exp and
!> tanh (glibc's libmvec), 3 times faster than plain -O2 on AVX-512; there, gcc's
!> -mprefer-vector-width=512 (which the Makefile adds where the compiler knows it) makes it 1.2x
!> faster again. With OpenMP (-fopenmp) the blocks run in parallel.
!>
!> Limits, checked by tartes_emulator_load: at most MAXW = 16 wavelengths and MAX_WIDTH = 512
!> features and units per layer of the network (raise them and recompile for a larger model).
!>
!> Thread safety: tartes_emulator_load writes module variables: call it once, before any
!> parallel region. The other routines only read them; they are recursive, so that their local
!> arrays are on the stack of the calling thread whatever the compiler's options.
module tartes_emulator
  use, intrinsic :: iso_fortran_env, only: error_unit, output_unit
  use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan, ieee_is_nan
  implicit none
  private

  public :: tartes_emulator_load, tartes_emulator_loaded, tartes_emulator_budget, tartes_emulator_crocus, &
            tartes_emulator_outside_domain
  ! the drop-in for Crocus (see the section "The drop-in for Crocus" at the end of the module)
  public :: tartes_emulator_snowcro_tartes, tartes_emulator_snowcro_interface, tartes_emulator_register_fallback, &
            tartes_emulator_outside_count

  ! 8-byte reals whatever the compiler's flags: kind(1.0d0) would be 16 bytes under gfortran's
  ! -fdefault-real-8 without -fdefault-double-8, and SURFEX compiles with -fdefault-real-8
  integer, parameter :: dp = selected_real_kind(15, 307)
  ! The working precision of the per-block kernel (layer optics, sweeps, features, network): 4-byte
  ! reals, as the Python model computes (float32), twice as many points per vector instruction as
  ! dp. The interfaces, the checks, Crocus's rules and the final budget stay in dp.
  integer, parameter :: wp = selected_real_kind(6, 37)
  integer, parameter, public :: TARTES_EMULATOR_MAX_LAYERS = 50
  ! 3: the soil albedo and cos_zenith; 4: the per-band constants of SURFEX's clean-up regime, and
  ! the setting truncation (SURFEX's truncation of deep layers) with its threshold tau_truncation;
  ! 5: n_depths, the optical depths of the top layers as features (with optical_depth_floor)
  integer, parameter, public :: TARTES_EMULATOR_FORMAT_VERSION = 5
  !> status codes
  integer, parameter, public :: TARTES_EMULATOR_OK = 0, TARTES_EMULATOR_NOT_LOADED = 1, &
                                TARTES_EMULATOR_BAD_SHAPE = 2, TARTES_EMULATOR_BAD_INPUT = 3

  integer, parameter :: WORD_LENGTH = 256  ! longest word of a line of the weights file that is kept
  character(len=*), parameter :: FORMAT_NAME = 'tartes-emulator-weights'
  character(len=*), parameter :: ARCHITECTURE = 'optical_budget'
  character(len=*), parameter :: ACTIVATION = 'silu'
  integer, parameter :: MAXL = TARTES_EMULATOR_MAX_LAYERS
  ! Fixed bounds of the local arrays, so that they live on the stack (no allocation per point)
  integer, parameter :: MAXW = 16          ! wavelengths of the features
  integer, parameter :: MAX_WIDTH = 512    ! features, and the width of every layer of the network
  integer, parameter :: NB = 32            ! points computed together (block_budget)
  integer, parameter :: CHUNK = 8          ! layers whose optics are computed together
  real(dp), parameter :: OPTICALLY_DEEP = 92  ! exp(-92) = 1e-40: see block_features
  real(dp), parameter :: WEAK_ABSORPTION = 0.03_dp  ! features.WEAK_ABSORPTION
  real(dp), parameter :: DAYLIGHT_MIN = 1e-8_dp  ! W m-2: utils.tartes_constants.DAYLIGHT_MIN, no light below
  integer, parameter :: N_DOMAIN = 9
  integer, parameter :: N_CLEANUP_BANDS = 51  ! the TARTES bands up to 1300 nm (300, 320, ..., 1300 nm)
  character(len=15), parameter :: DOMAIN_NAMES(N_DOMAIN) = [character(len=15) :: 'dz', 'ssa', 'density', &
       'soot', 'dust', 'snow_depth', 'cos_illum', 'direct_fraction', 'soil_albedo']

  type :: linear_layer
     real(dp), allocatable :: w(:, :)  ! (n_out, n_in), as torch.nn.Linear.weight
     real(dp), allocatable :: b(:)     ! (n_out)
     ! the same in the working precision (float32 values: exact), the weights transposed, wt(n_in,
     ! n_out), both padded with zeros to multiples of 4 (the network's 4 x 4 tiles: block_budget)
     real(wp), allocatable :: wt(:, :), bw(:)
  end type linear_layer

  ! ---- the loaded emulator (set by tartes_emulator_load, read-only afterwards) ----
  logical :: is_loaded = .false.
  character(len=:), allocatable :: loaded_path
  integer :: nw = 0          ! wavelengths of the two-stream features
  integer :: nd = 0          ! top layers described one by one (n_described)
  integer :: ndp = 0         ! top layers whose optical depth from the surface is a feature (n_depths)
  integer :: ns = 0          ! top layers with a mixture component of their own (n_surface)
  integer :: nsh = 0         ! the last nsh wavelengths on the top lsh layers only (n_shallow, shallow_layers)
  integer :: lsh = MAXL
  ! SURFEX's truncation at the features' wavelengths (truncation, tau_truncation): from the second
  ! layer on, a layer where the two-way optical depth from the surface through it, 2 ke tau*
  ! summed, exceeds truncation_depth = 2 tau_truncation is dropped with all below it
  logical :: truncation = .false.
  real(dp) :: truncation_depth = 0
  ! a layer's opacity 1 - f2 by its series where its -2 ke tau* exceeds opacity_series, as the
  ! Python model computes it (features.TwoStreamOptics.opacity)
  real(dp) :: opacity_series = 0
  integer :: nf = 0          ! features
  integer :: nc = 0          ! mixture components: nw + ns
  integer :: nlin = 0        ! linear layers
  ! per wavelength: the buffers of features.TwoStreamOptics
  real(dp), allocatable :: c_minus_y(:), c_half_phi(:), c_ginf(:), c_gspan(:), c_clean(:), c_soot(:), c_dust(:)
  real(dp), allocatable :: rho_absent(:)  ! 1 - r of an absent layer, as the Python model has it
  logical, allocatable :: weak(:)  ! wavelengths whose clean co-albedo is its series (clean_coalbedo)
  ! Crocus's rules, the soil albedo of the calls that pass none, the floors of the features
  real(dp) :: ice_density, ice_ssa, ice_soot, ssa_anomaly, ssa_replacement, cos_illum_min, ice_density_max
  real(dp), allocatable :: dumont(:)  ! c3, c2, c1, c0: Dumont's diffuse fraction exp(min(((c3 c + c2) c + c1) c + c0, 0))
  real(dp) :: default_soil_albedo, diffuse_cos, depth_floor, coalbedo_floor, optical_depth_floor
  ! the spectral repartition of direct and diffuse shortwave over the TARTES bands (SURFEX XPRATIO_DIR,
  ! XPRATIO_DIF; data/crocus_t17_bands.csv), W-1 m2 per band: the drop-in's PSPEC_DIR and PSPEC_DIF
  real(dp), allocatable :: band_ratio_direct(:), band_ratio_diffuse(:)
  ! SURFEX's clean-up regime (utils.crocus_rules.cleanup_rows), per band up to 1300 nm: a layer's
  ! co-albedo half_coalbedo (1 - exp(-ice_exponent / ssa)) + 2 / ssa (mae_soot soot + mae_dust dust);
  ! and the largest of each, for a bound that clears most layers without the bands (in_cleanup_regime)
  real(dp), allocatable :: cleanup_half_coalbedo(:), cleanup_ice_exponent(:), cleanup_mae_soot(:), &
                           cleanup_mae_dust(:)
  real(dp) :: cleanup_max_half_coalbedo, cleanup_max_mae_soot, cleanup_max_mae_dust
  real(dp), allocatable :: feature_mean(:), feature_std(:)
  real(wp), allocatable :: feature_mean_w(:), feature_std_w(:)
  real(wp) :: coalbedo_floor_w, optical_depth_floor_w
  real(dp) :: domain_low(N_DOMAIN), domain_high(N_DOMAIN)
  type(linear_layer), allocatable :: net(:)

  ! ---- reading the weights file ----
  type :: reader
     integer :: unit = -1
     integer :: line_number = 0
  end type reader

  ! ---- the drop-in for Crocus (tartes_emulator_snowcro_tartes, at the end of the module) ----
  !> The interface of SURFEX's SNOWCRO_TARTES (mode_tartes.F90), argument for argument: the
  !> drop-in has it, and so must a routine registered by tartes_emulator_register_fallback. The
  !> kinds are written as SURFEX's REAL (8 bytes), INTEGER and LOGICAL (default) are.
  abstract interface
    subroutine tartes_emulator_snowcro_interface(psnowgran1, psnowgran2, psnowrho, psnowdz, psnowg0, psnowy0, &
                                                 psnoww0, psnowb0, psnowimpur, palb, psw_rad, pzenith, pangl_illum, &
                                                 pdircoszw, knlvls_use, psnowalb, pradsink, pradxs, odebug, &
                                                 hsnowmetamo, p_dir_sw, p_sca_sw, psnowalb_sp, pspec_dir, pspec_dif, &
                                                 oatmorad, psnowalb_fb)
      real(8),      dimension(:,:),   intent(in)  :: psnowgran1, psnowgran2, psnowrho, psnowdz
      real(8),      dimension(:,:),   intent(in)  :: psnowg0, psnowy0, psnoww0, psnowb0
      real(8),      dimension(:,:,:), intent(in)  :: psnowimpur
      real(8),      dimension(:),     intent(in)  :: palb, psw_rad, pzenith, pangl_illum, pdircoszw
      integer,      dimension(:),     intent(in)  :: knlvls_use
      real(8),      dimension(:),     intent(out) :: psnowalb
      real(8),      dimension(:,:),   intent(out) :: pradsink
      real(8),      dimension(:),     intent(out) :: pradxs
      logical,                        intent(in)  :: odebug
      character(3),                   intent(in)  :: hsnowmetamo
      real(8),      dimension(:,:),   intent(in)  :: p_dir_sw, p_sca_sw
      real(8),      dimension(:,:),   intent(out) :: psnowalb_sp
      real(8),      dimension(:,:),   intent(out) :: pspec_dir, pspec_dif
      logical,                        intent(in)  :: oatmorad
      real(8),      dimension(:),     intent(out), optional :: psnowalb_fb
    end subroutine tartes_emulator_snowcro_interface
  end interface

  !> The routine that computes the points outside the emulator's domain, when one is registered
  procedure(tartes_emulator_snowcro_interface), pointer :: fallback => null()
  !> Set (atomically) once the drop-in has made sure the weights are loaded: see ensure_weights
  logical :: weights_ready = .false.
  !> Points outside the emulator's domain met by the drop-in (tartes_emulator_outside_count), and
  !> whether the one-time warning about them has been written
  integer, parameter :: i8 = selected_int_kind(18)
  integer(i8) :: outside_points = 0
  logical :: extrapolation_warned = .false.
  character(len=*), parameter :: WEIGHTS_VARIABLE = 'TARTES_EMULATOR_WEIGHTS'

  ! Crocus's constants that the drop-in needs beyond the weights file's (SURFEX
  ! modd_const_tartes.F90, mode_snow3l.F90 GET_DIAM)
  integer, parameter :: N_TARTES_BANDS = 111  ! 300, 320, ..., 2500 nm
  real(dp), parameter :: UNDEFINED = 1e20_dp  ! SURFEX's XUNDEF: outputs TARTES gives and the emulator does not
  real(dp), parameter :: SSA_ICE_DENSITY = 917  ! kg m-3: SSA = 6 / (917 d), d the optical diameter
  ! the grain shape parameters Crocus passes (XPSNOWG0, XPSNOWY0, XPSNOWW0, XPSNOWB0): the only ones trained
  real(dp), parameter :: CROCUS_SHAPE(4) = [0.8961_dp, 0.728_dp, 0.0611_dp, 1.225_dp]
  character(len=7), parameter :: SHAPE_NAMES(4) = ['PSNOWG0', 'PSNOWY0', 'PSNOWW0', 'PSNOWB0']
  real(dp), parameter :: SHAPE_TOLERANCE = 1e-6_dp  ! relative: a constant written in single precision passes
  ! B92's optical diameter (GET_DIAM): D1, D2, D3 in 1e-4 m, X the range of dendricity and sphericity
  real(dp), parameter :: B92_D1 = 1, B92_D2 = 3, B92_D3 = 4, B92_X = 99

contains

  ! =============================================================================================
  ! Loading
  ! =============================================================================================

  !> Reads the weights file written by export.py. Stops (error stop) with a message naming the
  !> file and the problem on a missing or unreadable file, a wrong format version, an unknown
  !> architecture or activation, or shapes that do not fit together.
  subroutine tartes_emulator_load(path)
    character(len=*), intent(in) :: path
    type(reader) :: rd
    logical :: exists
    integer :: ios, version, n_layers, n_hidden, i, j, k, n_in, n_out, truncated
    integer, allocatable :: hidden(:)
    character(len=512) :: iomessage
    character(len=:), allocatable :: line, word
    character(len=WORD_LENGTH), allocatable :: words(:)
    real(dp) :: low, high

    is_loaded = .false.
    loaded_path = trim(path)
    inquire(file=path, exist=exists)
    if (.not. exists) call load_error(rd, 'no such file (write it with: python export.py --model MODEL.pt --out DIR)')
    open(newunit=rd%unit, file=path, status='old', action='read', form='formatted', iostat=ios, iomsg=iomessage)
    if (ios /= 0) call load_error(rd, 'cannot be opened: '//trim(iomessage))

    ! first line: format name and version
    call next_line(rd, line)
    call split(line, words)
    if (size(words) /= 2) call load_error(rd, 'not a tartes-emulator weights file (the first line must be "' &
                                          //FORMAT_NAME//' <version>")')
    if (words(1) /= FORMAT_NAME) call load_error(rd, 'not a tartes-emulator weights file (the first line must be "' &
                                                 //FORMAT_NAME//' <version>")')
    read(words(2), *, iostat=ios) version
    if (ios /= 0) call load_error(rd, 'unreadable format version "'//trim(words(2))//'"')
    if (version /= TARTES_EMULATOR_FORMAT_VERSION) call load_error(rd, 'format version '//trim(words(2)) &
         //', but this module reads version '//int_text(TARTES_EMULATOR_FORMAT_VERSION) &
         //': export the weights with the export.py that matches this module')

    call read_word(rd, 'architecture', word)
    if (word /= ARCHITECTURE) call load_error(rd, 'unknown architecture "'//word//'": this module implements ' &
                                              //ARCHITECTURE)
    call read_word(rd, 'activation', word)
    if (word /= ACTIVATION) call load_error(rd, 'unknown activation "'//word//'": this module implements '//ACTIVATION)
    call read_word(rd, 'model_sha256', word)

    call read_int(rd, 'n_layers', n_layers)
    if (n_layers /= MAXL) call load_error(rd, 'n_layers is '//int_text(n_layers)//', this module takes ' &
                                          //int_text(MAXL))
    call read_int(rd, 'n_wavelengths', nw)
    if (nw < 1 .or. nw > MAXW) call load_error(rd, 'n_wavelengths must be in [1, '//int_text(MAXW) &
                                               //'] (MAXW of this module)')
    call read_int(rd, 'n_described', nd)
    if (nd < 0 .or. nd > MAXL) call load_error(rd, 'n_described must be in [0, 50]')
    call read_int(rd, 'n_depths', ndp)
    if (ndp < 0 .or. ndp > MAXL) call load_error(rd, 'n_depths must be in [0, 50]')
    call read_int(rd, 'n_surface', ns)
    if (ns < 0 .or. ns > MAXL) call load_error(rd, 'n_surface must be in [0, 50]')
    call read_int(rd, 'n_shallow', nsh)
    if (nsh < 0 .or. nsh > nw) call load_error(rd, 'n_shallow must be in [0, n_wavelengths]')
    call read_int(rd, 'shallow_layers', lsh)
    if (lsh < 1 .or. lsh > MAXL) call load_error(rd, 'shallow_layers must be in [1, 50]')
    if (nsh > 0 .and. nd > lsh) call load_error(rd, 'n_described must not exceed shallow_layers')
    if (nsh > 0 .and. ndp > lsh) call load_error(rd, 'n_depths must not exceed shallow_layers')
    call read_int(rd, 'truncation', truncated)
    if (truncated /= 0 .and. truncated /= 1) call load_error(rd, 'truncation must be 0 (off) or 1 (on)')
    truncation = truncated == 1
    call read_real(rd, 'tau_truncation', truncation_depth)
    if (.not. (truncation_depth > 0)) call load_error(rd, 'tau_truncation must be > 0')
    truncation_depth = 2*truncation_depth
    call read_real(rd, 'opacity_series', opacity_series)
    if (.not. (opacity_series <= 0)) call load_error(rd, 'opacity_series must be <= 0')
    nc = nw + ns
    call read_int(rd, 'n_hidden', n_hidden)
    if (n_hidden < 0) call load_error(rd, 'n_hidden must be >= 0')
    allocate(hidden(n_hidden))
    call read_ints(rd, 'hidden', n_hidden, hidden)
    if (any(hidden < 1) .or. any(hidden > MAX_WIDTH)) call load_error(rd, 'hidden sizes must be in [1, ' &
         //int_text(MAX_WIDTH)//'] (MAX_WIDTH of this module)')

    call read_reals(rd, 'wavelengths_nm', nw)
    call read_reals(rd, 'minus_y_c', nw, c_minus_y)
    call read_reals(rd, 'half_phi_c', nw, c_half_phi)
    call read_reals(rd, 'ginf', nw, c_ginf)
    call read_reals(rd, 'g_span', nw, c_gspan)
    call read_reals(rd, 'clean', nw, c_clean)
    call read_reals(rd, 'soot', nw, c_soot)
    call read_reals(rd, 'dust', nw, c_dust)

    call read_real(rd, 'ice_density', ice_density)
    call read_real(rd, 'ice_ssa', ice_ssa)
    call read_real(rd, 'ice_soot', ice_soot)
    call read_real(rd, 'ssa_anomaly', ssa_anomaly)
    call read_real(rd, 'ssa_replacement', ssa_replacement)
    call read_real(rd, 'cos_illum_min', cos_illum_min)
    call read_real(rd, 'ice_density_max', ice_density_max)
    call read_reals(rd, 'dumont_diffuse', 4, dumont)
    call read_real(rd, 'default_soil_albedo', default_soil_albedo)
    call read_real(rd, 'diffuse_cos', diffuse_cos)
    call read_real(rd, 'depth_floor', depth_floor)
    call read_real(rd, 'coalbedo_floor', coalbedo_floor)
    call read_real(rd, 'optical_depth_floor', optical_depth_floor)
    if (.not. (optical_depth_floor > 0)) call load_error(rd, 'optical_depth_floor must be > 0')
    call read_reals(rd, 'band_ratio_direct', N_TARTES_BANDS, band_ratio_direct)
    call read_reals(rd, 'band_ratio_diffuse', N_TARTES_BANDS, band_ratio_diffuse)
    call read_reals(rd, 'cleanup_half_coalbedo', N_CLEANUP_BANDS, cleanup_half_coalbedo)
    call read_reals(rd, 'cleanup_ice_exponent', N_CLEANUP_BANDS, cleanup_ice_exponent)
    call read_reals(rd, 'cleanup_mae_soot', N_CLEANUP_BANDS, cleanup_mae_soot)
    call read_reals(rd, 'cleanup_mae_dust', N_CLEANUP_BANDS, cleanup_mae_dust)
    cleanup_max_half_coalbedo = maxval(cleanup_half_coalbedo)
    cleanup_max_mae_soot = maxval(cleanup_mae_soot)
    cleanup_max_mae_dust = maxval(cleanup_mae_dust)

    call read_int(rd, 'n_features', nf)
    if (nf /= nw*(2 + 2*nd + ndp) + 3) call load_error(rd, 'inconsistent shapes: n_features is '//int_text(nf) &
         //', but n_wavelengths * (2 + 2 n_described + n_depths) + 3 = '//int_text(nw*(2 + 2*nd + ndp) + 3))
    if (nf > MAX_WIDTH .or. 2*(1 + nc) > MAX_WIDTH) call load_error(rd, 'more features or outputs than ' &
         //int_text(MAX_WIDTH)//' (MAX_WIDTH of this module)')
    call read_reals(rd, 'feature_mean', nf, feature_mean)
    call read_reals(rd, 'feature_std', nf, feature_std)
    if (any(.not. (feature_std > 0))) call load_error(rd, 'feature_std must be > 0')

    do i = 1, N_DOMAIN
      call next_line(rd, line)
      call split(line, words)
      if (size(words) /= 4) call load_error(rd, 'expected "domain '//trim(DOMAIN_NAMES(i))//' <low> <high>"')
      if (words(1) /= 'domain' .or. words(2) /= trim(DOMAIN_NAMES(i))) &
           call load_error(rd, 'expected "domain '//trim(DOMAIN_NAMES(i))//' <low> <high>", found "'//line//'"')
      read(words(3), *, iostat=ios) low
      if (ios == 0) read(words(4), *, iostat=ios) high
      if (ios /= 0) call load_error(rd, 'unreadable domain bounds in "'//line//'"')
      domain_low(i) = low
      domain_high(i) = high
    end do

    call read_int(rd, 'n_linear', nlin)
    if (nlin /= n_hidden + 1) call load_error(rd, 'inconsistent shapes: n_linear is '//int_text(nlin) &
         //', but there are '//int_text(n_hidden)//' hidden layers')
    if (allocated(net)) deallocate(net)
    allocate(net(nlin))
    n_in = nf
    do i = 1, nlin
      if (i <= n_hidden) then
        n_out = hidden(i)
      else
        n_out = 2*(1 + nc)
      end if
      call next_line(rd, line)
      call split(line, words)
      if (size(words) /= 4) call load_error(rd, 'expected "weight '//int_text(i)//' <n_out> <n_in>"')
      if (words(1) /= 'weight' .or. words(2) /= int_text(i) .or. words(3) /= int_text(n_out) &
          .or. words(4) /= int_text(n_in)) call load_error(rd, 'inconsistent shapes: expected "weight ' &
          //int_text(i)//' '//int_text(n_out)//' '//int_text(n_in)//'", found "'//line//'"')
      allocate(net(i)%w(n_out, n_in), net(i)%b(n_out))
      do j = 1, n_out
        call next_line(rd, line)
        call parse_reals(rd, line, 'row '//int_text(j)//' of weight '//int_text(i), n_in, net(i)%w(j, :))
      end do
      call next_line(rd, line)
      if (trim(line) /= 'bias '//int_text(i)//' '//int_text(n_out)) call load_error(rd, &
           'inconsistent shapes: expected "bias '//int_text(i)//' '//int_text(n_out)//'", found "'//line//'"')
      call next_line(rd, line)
      call parse_reals(rd, line, 'bias '//int_text(i), n_out, net(i)%b)
      allocate(net(i)%wt(4*((n_in + 3)/4), 4*((n_out + 3)/4)), source=0.0_wp)
      allocate(net(i)%bw(4*((n_out + 3)/4)), source=0.0_wp)
      net(i)%wt(1:n_in, 1:n_out) = real(transpose(net(i)%w), wp)
      net(i)%bw(1:n_out) = real(net(i)%b, wp)
      n_in = n_out
    end do
    call next_line(rd, line)
    if (trim(line) /= 'end') call load_error(rd, 'expected "end" after the last layer, found "'//line//'"')
    close(rd%unit)

    if (allocated(rho_absent)) deallocate(rho_absent)
    if (allocated(weak)) deallocate(weak)
    allocate(rho_absent(nw), weak(nw))
    ! as TwoStreamOptics.layer_optics: the series for a group of wavelengths computed together
    ! (all the layers, then the shallow ones) only where every one of them is weak
    weak = c_half_phi/ice_ssa < WEAK_ABSORPTION
    weak(1:nw - nsh) = all(weak(1:nw - nsh))
    weak(nw - nsh + 1:nw) = all(weak(nw - nsh + 1:nw))
    ! An absent layer holds 0 in the Python model: inverse SSA 1, no impurities.
    do k = 1, nw
      rho_absent(k) = semi_infinite_coalbedo(k, 1.0_dp, 0.0_dp, 0.0_dp)
    end do
    feature_mean_w = real(feature_mean, wp)
    feature_std_w = real(feature_std, wp)
    coalbedo_floor_w = real(coalbedo_floor, wp)
    optical_depth_floor_w = real(optical_depth_floor, wp)
    is_loaded = .true.
  end subroutine tartes_emulator_load

  !> Whether tartes_emulator_load has read a weights file.
  logical function tartes_emulator_loaded()
    tartes_emulator_loaded = is_loaded
  end function tartes_emulator_loaded

  subroutine load_error(rd, problem)
    type(reader), intent(in) :: rd
    character(len=*), intent(in) :: problem
    if (rd%line_number > 0) then
      write(error_unit, '(a)') 'tartes_emulator_load: '//loaded_path//', line '//int_text(rd%line_number)//': '//problem
    else
      write(error_unit, '(a)') 'tartes_emulator_load: '//loaded_path//': '//problem
    end if
    error stop 1
  end subroutine load_error

  !> The next line that is neither blank nor a comment (#), of any length.
  subroutine next_line(rd, line)
    type(reader), intent(inout) :: rd
    character(len=:), allocatable, intent(out) :: line
    character(len=4096) :: buffer
    integer :: ios, n
    character(len=512) :: iomessage
    do
      line = ''
      do
        read(rd%unit, '(a)', advance='no', iostat=ios, size=n, iomsg=iomessage) buffer
        line = line//buffer(:n)
        if (ios /= 0) exit
      end do
      if (is_iostat_end(ios)) call load_error(rd, 'the file ends early (truncated?)')
      if (.not. is_iostat_eor(ios)) call load_error(rd, 'unreadable: '//trim(iomessage))
      rd%line_number = rd%line_number + 1
      line = trim(adjustl(line))
      if (len(line) == 0) cycle
      if (line(1:1) == '#') cycle
      return
    end do
  end subroutine next_line

  !> The blank-separated words of a line: counted in a first pass, stored in a second.
  subroutine split(line, words)
    character(len=*), intent(in) :: line
    character(len=WORD_LENGTH), allocatable, intent(out) :: words(:)
    integer :: pass, i, n, start
    do pass = 1, 2
      n = 0
      i = 1
      do while (i <= len(line))
        if (line(i:i) /= ' ') then
          start = i
          do while (i <= len(line))
            if (line(i:i) == ' ') exit
            i = i + 1
          end do
          n = n + 1
          if (pass == 2) words(n) = line(start:i - 1)
        end if
        i = i + 1
      end do
      if (pass == 1) allocate(words(n))
    end do
  end subroutine split

  !> "key value": the value, a word.
  subroutine read_word(rd, key, value)
    type(reader), intent(inout) :: rd
    character(len=*), intent(in) :: key
    character(len=:), allocatable, intent(out) :: value
    character(len=:), allocatable :: line
    character(len=WORD_LENGTH), allocatable :: words(:)
    call next_line(rd, line)
    call split(line, words)
    if (size(words) /= 2) call load_error(rd, 'expected "'//key//' <value>", found "'//line//'"')
    if (words(1) /= key) call load_error(rd, 'expected "'//key//' <value>", found "'//line//'"')
    value = trim(words(2))
  end subroutine read_word

  subroutine read_int(rd, key, value)
    type(reader), intent(inout) :: rd
    character(len=*), intent(in) :: key
    integer, intent(out) :: value
    character(len=:), allocatable :: word
    integer :: ios
    call read_word(rd, key, word)
    read(word, *, iostat=ios) value
    if (ios /= 0) call load_error(rd, key//': "'//word//'" is not an integer')
  end subroutine read_int

  subroutine read_real(rd, key, value)
    type(reader), intent(inout) :: rd
    character(len=*), intent(in) :: key
    real(dp), intent(out) :: value
    character(len=:), allocatable :: word
    integer :: ios
    call read_word(rd, key, word)
    read(word, *, iostat=ios) value
    if (ios /= 0) call load_error(rd, key//': "'//word//'" is not a number')
  end subroutine read_real

  !> "key n" then, when n > 0, a line of exactly n numbers; n must be `expected`.
  subroutine read_count(rd, key, expected)
    type(reader), intent(inout) :: rd
    character(len=*), intent(in) :: key
    integer, intent(in) :: expected
    integer :: n
    call read_int(rd, key, n)
    if (n /= expected) call load_error(rd, 'inconsistent shapes: '//key//' has '//int_text(n) &
                                       //' values, expected '//int_text(expected))
  end subroutine read_count

  subroutine read_reals(rd, key, n, values)
    type(reader), intent(inout) :: rd
    character(len=*), intent(in) :: key
    integer, intent(in) :: n
    real(dp), allocatable, intent(out), optional :: values(:)
    real(dp) :: parsed(n)
    character(len=:), allocatable :: line
    call read_count(rd, key, n)
    if (n > 0) then
      call next_line(rd, line)
      call parse_reals(rd, line, key, n, parsed)
    end if
    if (present(values)) values = parsed
  end subroutine read_reals

  subroutine read_ints(rd, key, n, values)
    type(reader), intent(inout) :: rd
    character(len=*), intent(in) :: key
    integer, intent(in) :: n
    integer, intent(out) :: values(n)
    real(dp) :: parsed(n)
    character(len=:), allocatable :: line
    call read_count(rd, key, n)
    if (n > 0) then
      call next_line(rd, line)
      call parse_reals(rd, line, key, n, parsed)
      if (any(parsed /= anint(parsed))) call load_error(rd, key//': expected integers')
      values = nint(parsed)
    end if
  end subroutine read_ints

  !> Exactly n numbers on a line.
  subroutine parse_reals(rd, line, what, n, values)
    type(reader), intent(in) :: rd
    character(len=*), intent(in) :: line, what
    integer, intent(in) :: n
    real(dp), intent(out) :: values(n)
    real(dp) :: extra(n + 1)
    integer :: ios
    read(line, *, iostat=ios) values
    if (ios /= 0) call load_error(rd, 'inconsistent shapes: '//what//' should hold '//int_text(n) &
                                  //' numbers, this line holds fewer or unreadable ones')
    read(line, *, iostat=ios) extra
    if (ios == 0) call load_error(rd, 'inconsistent shapes: '//what//' should hold '//int_text(n) &
                                  //' numbers, this line holds more')
  end subroutine parse_reals

  function int_text(i) result(text)
    integer, intent(in) :: i
    character(len=:), allocatable :: text
    character(len=24) :: buffer
    write(buffer, '(i0)') i
    text = trim(buffer)
  end function int_text

  !> A number for a message: NaN, Infinity, 0.01, 950, -1e-9 (about 9 significant digits).
  function real_text(x) result(text)
    real(dp), intent(in) :: x
    character(len=:), allocatable :: text, exponent
    character(len=40) :: buffer
    integer :: cut
    if (.not. (abs(x) <= huge(x))) then  ! NaN, Infinity
      write(buffer, '(g0)') x
      text = trim(adjustl(buffer))
    else if (x == 0 .or. (abs(x) >= 1e-4_dp .and. abs(x) < 1e7_dp)) then
      write(buffer, '(f0.9)') x
      buffer = adjustl(buffer)
      if (buffer(1:1) == '.') buffer = '0'//buffer(:len(buffer) - 1)
      if (buffer(1:2) == '-.') buffer = '-0'//buffer(2:len(buffer) - 1)
      text = strip(trim(buffer))
    else
      write(buffer, '(es17.9e3)') x
      buffer = adjustl(buffer)
      cut = index(buffer, 'E')
      exponent = int_text(read_int_text(buffer(cut + 1:)))
      text = strip(buffer(:cut - 1))//'e'//exponent
    end if
  contains
    function strip(number) result(stripped)  ! trailing zeros of the decimals, and a bare point
      character(len=*), intent(in) :: number
      character(len=:), allocatable :: stripped
      stripped = number
      if (index(stripped, '.') == 0) return
      do while (stripped(len(stripped):len(stripped)) == '0')
        stripped = stripped(:len(stripped) - 1)
      end do
      if (stripped(len(stripped):len(stripped)) == '.') stripped = stripped(:len(stripped) - 1)
    end function strip
    integer function read_int_text(digits)
      character(len=*), intent(in) :: digits
      read(digits, *) read_int_text
    end function read_int_text
  end function real_text

  ! =============================================================================================
  ! Public computations
  ! =============================================================================================

  !> The energy budget as fractions of the incident shortwave (see the module's header).
  recursive subroutine tartes_emulator_budget(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                              albedo, absorbed, soil, status, message, soil_albedo, cos_zenith)
    real(dp), intent(in) :: dz(:, :), ssa(:, :), density(:, :), soot(:, :), dust(:, :)
    real(dp), intent(in) :: cos_illum(:), direct_sw(:), diffuse_sw(:)
    real(dp), intent(out) :: albedo(:), absorbed(:, :), soil(:)
    integer, intent(out), optional :: status
    character(len=*), intent(out), optional :: message
    real(dp), intent(in), optional :: soil_albedo(:), cos_zenith(:)

    call budget_fractions('tartes_emulator_budget', dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                          soil_albedo, cos_zenith, albedo, absorbed, soil, status, message)
  end subroutine tartes_emulator_budget

  !> Crocus's outputs in W m-2 with its sign conventions (see the module's header): the fractions
  !> of tartes_emulator_budget, computed into the output arrays and turned into fluxes in place.
  recursive subroutine tartes_emulator_crocus(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                              psnowalb, pradsink, pradxs, status, message, soil_albedo, cos_zenith)
    real(dp), intent(in) :: dz(:, :), ssa(:, :), density(:, :), soot(:, :), dust(:, :)
    real(dp), intent(in) :: cos_illum(:), direct_sw(:), diffuse_sw(:)
    real(dp), intent(out) :: psnowalb(:), pradsink(:, :), pradxs(:)
    integer, intent(out), optional :: status
    character(len=*), intent(out), optional :: message
    real(dp), intent(in), optional :: soil_albedo(:), cos_zenith(:)
    real(dp) :: sw, below, absorbed
    integer :: p, l

    call budget_fractions('tartes_emulator_crocus', dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                          soil_albedo, cos_zenith, psnowalb, pradsink, pradxs, status, message)
    if (size(pradsink, 1) /= size(dz, 1) .or. size(pradxs) /= size(dz, 1)) return  ! refused shapes: NaN
    !$omp parallel do default(shared) private(p, l, sw, below, absorbed) schedule(static)
    do p = 1, size(dz, 1)
      sw = direct_sw(p) + diffuse_sw(p)
      ! minus the net flux below each layer: what the layers under it and the soil absorb
      below = pradxs(p)
      do l = size(pradsink, 2), 1, -1
        absorbed = pradsink(p, l)
        pradsink(p, l) = -sw*below
        below = below + absorbed
      end do
      pradxs(p) = sw*pradxs(p)
    end do
    !$omp end parallel do
  end subroutine tartes_emulator_crocus

  !> The fractions of the budget for the public routines (`caller` names them in messages).
  recursive subroutine budget_fractions(caller, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                        soil_albedo, cos_zenith, albedo, absorbed, soil, status, message)
    character(len=*), intent(in) :: caller
    real(dp), intent(in) :: dz(:, :), ssa(:, :), density(:, :), soot(:, :), dust(:, :)
    real(dp), intent(in) :: cos_illum(:), direct_sw(:), diffuse_sw(:)
    real(dp), intent(in), optional :: soil_albedo(:), cos_zenith(:)
    real(dp), intent(out) :: albedo(:), absorbed(:, :), soil(:)
    integer, intent(out), optional :: status
    character(len=*), intent(out), optional :: message
    logical :: valid, block_valid
    integer :: p0, n, code
    character(len=:), allocatable :: problem

    ! shapes first; the values as each block is read (one pass over the inputs), the first fault
    ! looked for only if there is one
    call check_shapes(caller, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, &
                      cos_zenith, code, problem)
    if (code == TARTES_EMULATOR_OK) call check_outputs(caller, size(dz, 1), size(dz, 2), &
         [size(albedo), size(soil)], shape(absorbed), 'albedo, soil', 'absorbed', code, problem)
    if (code /= TARTES_EMULATOR_OK) then
      call conclude(code, problem, status, message)
      albedo = nan()
      absorbed = nan()
      soil = nan()
      return
    end if
    valid = .true.
    !$omp parallel do default(shared) private(p0, n, block_valid) reduction(.and.: valid) schedule(static)
    do p0 = 1, size(dz, 1), NB
      n = min(NB, size(dz, 1) - p0 + 1)
      call block_budget(p0, n, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, &
                        cos_zenith, albedo, absorbed, soil, block_valid)
      valid = valid .and. block_valid
    end do
    !$omp end parallel do
    if (.not. valid) then
      call first_fault(caller, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, &
                       cos_zenith, code, problem)
      albedo = nan()
      absorbed = nan()
      soil = nan()
    end if
    call conclude(code, problem, status, message)
  end subroutine budget_fractions

  !> outside(p): point p lies outside the emulator's domain, for one of two reasons.
  !>   - An input lies outside the ranges of the emulator's training data (the `domain` of the
  !>     weights file): a present layer's dz, ssa, density, soot or dust, or the snow depth,
  !>     cos_illum, direct fraction or soil albedo, before Crocus's rules, as
  !>     Emulator.outside_domain. There its outputs are extrapolated.
  !>   - The point is in SURFEX's clean-up regime (in_cleanup_regime, as
  !>     utils.crocus_rules.cleanup_rows): a present layer so laden with impurities for its SSA that
  !>     its single-scattering co-albedo reaches 1 in a band up to 1300 nm. SURFEX's energy
  !>     clean-up then makes the outputs depend on the flux magnitudes themselves, a step that no
  !>     smooth model can follow, so the emulator does not answer for them.
  !> The drop-in hands both kinds to its registered fallback (inside SURFEX, SNOWCRO_TARTES), which
  !> computes them exactly. Dark points and points without snow, whose outputs are set, are never
  !> outside. Inputs checked as tartes_emulator_budget's.
  recursive subroutine tartes_emulator_outside_domain(dz, ssa, density, soot, dust, cos_illum, direct_sw, &
                                                      diffuse_sw, outside, status, message, soil_albedo, cos_zenith)
    real(dp), intent(in) :: dz(:, :), ssa(:, :), density(:, :), soot(:, :), dust(:, :)
    real(dp), intent(in) :: cos_illum(:), direct_sw(:), diffuse_sw(:)
    logical, intent(out) :: outside(:)
    integer, intent(out), optional :: status
    character(len=*), intent(out), optional :: message
    real(dp), intent(in), optional :: soil_albedo(:), cos_zenith(:)
    integer :: p, l, code
    real(dp) :: depth(size(dz, 1)), zenith
    logical :: known
    character(len=:), allocatable :: problem

    call check_inputs('tartes_emulator_outside_domain', dz, ssa, density, soot, dust, cos_illum, direct_sw, &
                      diffuse_sw, soil_albedo, cos_zenith, code, problem)
    if (code == TARTES_EMULATOR_OK .and. size(outside) /= size(dz, 1)) then
      code = TARTES_EMULATOR_BAD_SHAPE
      problem = 'tartes_emulator_outside_domain: the output outside must have size(dz, 1) = ' &
                //int_text(size(dz, 1))//' points'
    end if
    call conclude(code, problem, status, message)
    if (code /= TARTES_EMULATOR_OK) then
      outside = .true.
      return
    end if
    outside = .false.
    depth = 0
    do l = 1, size(dz, 2)
      do p = 1, size(dz, 1)
        if (dz(p, l) > 0) then
          depth(p) = depth(p) + dz(p, l)
          outside(p) = outside(p) .or. beyond(1, dz(p, l)) .or. beyond(2, ssa(p, l)) .or. &
                       beyond(3, density(p, l)) .or. beyond(4, soot(p, l)) .or. beyond(5, dust(p, l))
          if (.not. outside(p)) outside(p) = in_cleanup_regime(ssa(p, l), density(p, l), soot(p, l), dust(p, l))
        end if
      end do
    end do
    do p = 1, size(dz, 1)
      call point_zenith(p, cos_zenith, zenith, known)
      if (direct_sw(p) + diffuse_sw(p) <= DAYLIGHT_MIN .or. (known .and. zenith <= DAYLIGHT_MIN) &
          .or. depth(p) == 0) then
        outside(p) = .false.  ! dark, or no snow: the outputs are set, not computed
      else
        outside(p) = outside(p) .or. beyond(6, depth(p)) .or. beyond(7, cos_illum(p)) .or. &
                     beyond(8, direct_sw(p)/(direct_sw(p) + diffuse_sw(p))) .or. &
                     beyond(9, point_soil_albedo(p, soil_albedo))
      end if
    end do
  contains
    logical function beyond(i, x)
      integer, intent(in) :: i
      real(dp), intent(in) :: x
      beyond = x < domain_low(i) .or. x > domain_high(i)
    end function beyond
  end subroutine tartes_emulator_outside_domain

  !> Whether a present layer puts its point in SURFEX's clean-up regime (utils.crocus_rules.cleanup_rows;
  !> docs/labels.md, step 2, point 4): after Crocus's layer rules (density >= 850: ice, SSA 0.05,
  !> soot 100e-9, no dust; otherwise an SSA above 100 is 70), its single-scattering co-albedo
  !>     half_coalbedo(b) (1 - exp(-ice_exponent(b) / ssa)) + 2 / ssa (mae_soot(b) soot + mae_dust(b) dust)
  !> is >= 1 in one of the bands b up to 1300 nm. A bound first: the co-albedo of every band stays
  !> below the largest half co-albedo plus 2 / ssa times the largest mass absorptions' load, which
  !> clears nearly every layer; only the others are computed band by band.
  pure logical function in_cleanup_regime(ssa, density, soot, dust)
    real(dp), intent(in) :: ssa, density, soot, dust
    real(dp) :: s, so, du, two_over_s
    integer :: b
    s = ssa
    if (s > ssa_anomaly) s = ssa_replacement
    so = soot
    du = dust
    if (density >= ice_density) then
      s = ice_ssa
      so = ice_soot
      du = 0
    end if
    two_over_s = 2/s
    in_cleanup_regime = .false.
    ! the bound, a little loose (1e-12) so that rounding never clears a layer the bands would flag
    if (cleanup_max_half_coalbedo + two_over_s*(cleanup_max_mae_soot*so + cleanup_max_mae_dust*du) &
        < 1 - 1e-12_dp) return
    do b = 1, N_CLEANUP_BANDS
      if (cleanup_half_coalbedo(b)*(1 - exp(-cleanup_ice_exponent(b)/s)) &
          + two_over_s*(cleanup_mae_soot(b)*so + cleanup_mae_dust(b)*du) >= 1) then
        in_cleanup_regime = .true.
        return
      end if
    end do
  end function in_cleanup_regime

  ! =============================================================================================
  ! Checks
  ! =============================================================================================

  !> Shapes and values of the inputs; code TARTES_EMULATOR_OK or the fault, problem its message
  !> (naming the first faulty point, and layer). The values are counted in memory order first
  !> (cheap); the first fault is looked for only if there is one.
  subroutine check_inputs(routine, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, &
                          cos_zenith, code, problem)
    character(len=*), intent(in) :: routine
    real(dp), intent(in) :: dz(:, :), ssa(:, :), density(:, :), soot(:, :), dust(:, :)
    real(dp), intent(in) :: cos_illum(:), direct_sw(:), diffuse_sw(:)
    real(dp), intent(in), optional :: soil_albedo(:), cos_zenith(:)
    integer, intent(out) :: code
    character(len=:), allocatable, intent(out) :: problem
    integer :: p, l, faults
    real(dp) :: zenith
    logical :: known
    call check_shapes(routine, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, &
                      cos_zenith, code, problem)
    if (code /= TARTES_EMULATOR_OK) return
    faults = 0
    do p = 1, size(dz, 1)
      call point_zenith(p, cos_zenith, zenith, known)
      if (.not. point_valid(cos_illum(p), direct_sw(p), diffuse_sw(p), point_soil_albedo(p, soil_albedo), zenith)) &
           faults = faults + 1
    end do
    do l = 1, size(dz, 2)
      do p = 1, size(dz, 1)
        if (.not. layer_valid(dz(p, l), ssa(p, l), density(p, l), soot(p, l), dust(p, l))) faults = faults + 1
      end do
    end do
    if (faults > 0) call first_fault(routine, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                     soil_albedo, cos_zenith, code, problem)
  end subroutine check_inputs

  !> The module loaded, and the shapes of the inputs.
  subroutine check_shapes(routine, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, &
                          cos_zenith, code, problem)
    character(len=*), intent(in) :: routine
    real(dp), intent(in) :: dz(:, :), ssa(:, :), density(:, :), soot(:, :), dust(:, :)
    real(dp), intent(in) :: cos_illum(:), direct_sw(:), diffuse_sw(:)
    real(dp), intent(in), optional :: soil_albedo(:), cos_zenith(:)
    integer, intent(out) :: code
    character(len=:), allocatable, intent(out) :: problem
    integer :: npts, nl

    code = TARTES_EMULATOR_OK
    problem = ''
    if (.not. is_loaded) then
      code = TARTES_EMULATOR_NOT_LOADED
      problem = routine//': no emulator loaded: call tartes_emulator_load(path) first'
      return
    end if
    npts = size(dz, 1)
    nl = size(dz, 2)
    code = TARTES_EMULATOR_BAD_SHAPE
    if (nl < 1 .or. nl > MAXL) then
      problem = routine//': dz has '//int_text(nl)//' layers, expected 1 to '//int_text(MAXL)
      return
    end if
    if (any(shape(ssa) /= shape(dz))) problem = 'ssa'
    if (any(shape(density) /= shape(dz))) problem = 'density'
    if (any(shape(soot) /= shape(dz))) problem = 'soot'
    if (any(shape(dust) /= shape(dz))) problem = 'dust'
    if (len(problem) > 0) then
      problem = routine//': '//problem//' is not shaped like dz (npts, nlayers) = (' &
                //int_text(npts)//', '//int_text(nl)//')'
      return
    end if
    if (size(cos_illum) /= npts) problem = 'cos_illum'
    if (size(direct_sw) /= npts) problem = 'direct_sw'
    if (size(diffuse_sw) /= npts) problem = 'diffuse_sw'
    if (present(soil_albedo)) then
      if (size(soil_albedo) /= npts) problem = 'soil_albedo'
    end if
    if (present(cos_zenith)) then
      if (size(cos_zenith) /= npts) problem = 'cos_zenith'
    end if
    if (len(problem) > 0) then
      problem = routine//': '//problem//' has not size(dz, 1) = '//int_text(npts)//' points'
      return
    end if
    code = TARTES_EMULATOR_OK
  end subroutine check_shapes

  !> The first faulty value, in the order of the points (code TARTES_EMULATOR_BAD_INPUT and its
  !> message), or code TARTES_EMULATOR_OK.
  subroutine first_fault(routine, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, &
                         cos_zenith, code, problem)
    character(len=*), intent(in) :: routine
    real(dp), intent(in) :: dz(:, :), ssa(:, :), density(:, :), soot(:, :), dust(:, :)
    real(dp), intent(in) :: cos_illum(:), direct_sw(:), diffuse_sw(:)
    real(dp), intent(in), optional :: soil_albedo(:), cos_zenith(:)
    integer, intent(out) :: code
    character(len=:), allocatable, intent(out) :: problem
    integer :: npts, nl, p, l
    real(dp) :: ground, zenith
    logical :: known
    real(dp), parameter :: big = huge(1.0_dp)
    npts = size(dz, 1)
    nl = size(dz, 2)
    problem = ''
    code = TARTES_EMULATOR_BAD_INPUT
    do p = 1, npts
      if (.not. (cos_illum(p) >= -1 .and. cos_illum(p) <= 1)) then
        problem = at(p, 0)//'cos_illum = '//real_text(cos_illum(p))//' is outside [-1, 1]'
        return
      end if
      if (.not. (direct_sw(p) >= 0 .and. direct_sw(p) <= big)) then
        problem = at(p, 0)//'direct_sw = '//real_text(direct_sw(p))//' W m-2 is not a finite value >= 0'
        return
      end if
      if (.not. (diffuse_sw(p) >= 0 .and. diffuse_sw(p) <= big)) then
        problem = at(p, 0)//'diffuse_sw = '//real_text(diffuse_sw(p))//' W m-2 is not a finite value >= 0'
        return
      end if
      ground = point_soil_albedo(p, soil_albedo)
      if (.not. (ground >= 0 .and. ground <= 1)) then
        problem = at(p, 0)//'soil_albedo = '//real_text(ground)//' is not a finite value in [0, 1]'
        return
      end if
      call point_zenith(p, cos_zenith, zenith, known)
      if (.not. (abs(zenith) <= 1)) then
        problem = at(p, 0)//'cos_zenith = '//real_text(zenith)//' is outside [-1, 1] (NaN: not known)'
        return
      end if
      do l = 1, nl
        if (.not. (dz(p, l) >= 0 .and. dz(p, l) <= big)) then
          problem = at(p, l)//'dz = '//real_text(dz(p, l))//' m is not a finite value >= 0 (0 for no layer)'
          return
        end if
        if (dz(p, l) > 0) then
          if (.not. (ssa(p, l) > 0 .and. ssa(p, l) <= big)) then
            problem = at(p, l)//'ssa = '//real_text(ssa(p, l))//' m2 kg-1 is not a finite value > 0'
            return
          end if
          if (.not. (density(p, l) > 0 .and. density(p, l) <= ice_density_max)) then
            problem = at(p, l)//'density = '//real_text(density(p, l))//' kg m-3 is not in (0, ' &
                      //real_text(ice_density_max)//'] (pure ice is the densest)'
            return
          end if
          if (.not. (soot(p, l) >= 0 .and. soot(p, l) <= big)) then
            problem = at(p, l)//'soot = '//real_text(soot(p, l))//' kg kg-1 is not a finite value >= 0'
            return
          end if
          if (.not. (dust(p, l) >= 0 .and. dust(p, l) <= big)) then
            problem = at(p, l)//'dust = '//real_text(dust(p, l))//' kg kg-1 is not a finite value >= 0'
            return
          end if
        end if
      end do
    end do
    code = TARTES_EMULATOR_OK
  contains
    function at(p, l) result(text)
      integer, intent(in) :: p, l
      character(len=:), allocatable :: text
      if (l > 0) then
        text = routine//': point '//int_text(p)//', layer '//int_text(l)//': '
      else
        text = routine//': point '//int_text(p)//': '
      end if
    end function at
  end subroutine first_fault

  !> A point's illumination and soil are valid: cos_illum in [-1, 1], fluxes finite and >= 0, the
  !> soil albedo in [0, 1], the zenith cosine (of point_zenith: 1 where not known) in [-1, 1].
  elemental logical function point_valid(cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith)
    real(dp), intent(in) :: cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith
    real(dp), parameter :: big = huge(1.0_dp)
    point_valid = cos_illum >= -1 .and. cos_illum <= 1 .and. direct_sw >= 0 .and. direct_sw <= big &
                  .and. diffuse_sw >= 0 .and. diffuse_sw <= big .and. soil_albedo >= 0 .and. soil_albedo <= 1 &
                  .and. abs(cos_zenith) <= 1
  end function point_valid

  !> The soil albedo of point p: the caller's, or the default (0.2) when the caller passed none.
  pure real(dp) function point_soil_albedo(p, soil_albedo) result(ground)
    integer, intent(in) :: p
    real(dp), intent(in), optional :: soil_albedo(:)
    ground = default_soil_albedo
    if (present(soil_albedo)) ground = soil_albedo(p)
  end function point_soil_albedo

  !> The zenith cosine of point p and whether it is known: the caller's, unless the caller passed
  !> none or NaN (then zenith = 1, which no rule reads). NaN is never compared: a model compiled
  !> to trap invalid operations (-ffpe-trap=invalid) would stop on it.
  pure subroutine point_zenith(p, cos_zenith, zenith, known)
    integer, intent(in) :: p
    real(dp), intent(in), optional :: cos_zenith(:)
    real(dp), intent(out) :: zenith
    logical, intent(out) :: known
    zenith = 1
    known = .false.
    if (present(cos_zenith)) then
      if (.not. ieee_is_nan(cos_zenith(p))) then
        zenith = cos_zenith(p)
        known = .true.
      end if
    end if
  end subroutine point_zenith

  !> A layer is valid when absent (dz = 0) or present with finite, physical values.
  elemental logical function layer_valid(dz, ssa, density, soot, dust)
    real(dp), intent(in) :: dz, ssa, density, soot, dust
    real(dp), parameter :: big = huge(1.0_dp)
    layer_valid = dz == 0 .or. (dz > 0 .and. dz <= big .and. ssa > 0 .and. ssa <= big .and. density > 0 &
                  .and. density <= ice_density_max .and. soot >= 0 .and. soot <= big .and. dust >= 0 &
                  .and. dust <= big)
  end function layer_valid

  subroutine check_outputs(routine, npts, nl, point_sizes, layer_shape, point_names, layer_name, code, problem)
    character(len=*), intent(in) :: routine, point_names, layer_name
    integer, intent(in) :: npts, nl, point_sizes(:), layer_shape(2)
    integer, intent(out) :: code
    character(len=:), allocatable, intent(out) :: problem
    code = TARTES_EMULATOR_OK
    problem = ''
    if (any(point_sizes /= npts)) then
      code = TARTES_EMULATOR_BAD_SHAPE
      problem = routine//': the outputs '//point_names//' must have size(dz, 1) = '//int_text(npts)//' points'
    else if (layer_shape(1) /= npts .or. layer_shape(2) /= nl) then
      code = TARTES_EMULATOR_BAD_SHAPE
      problem = routine//': the output '//layer_name//' must be shaped like dz (' &
                //int_text(npts)//', '//int_text(nl)//')'
    end if
  end subroutine check_outputs

  !> Hands a fault over: to status and message when the caller passed status, else stops.
  subroutine conclude(code, problem, status, message)
    integer, intent(in) :: code
    character(len=*), intent(in) :: problem
    integer, intent(out), optional :: status
    character(len=*), intent(out), optional :: message
    if (present(status)) status = code
    if (present(message)) message = problem
    if (code /= TARTES_EMULATOR_OK .and. .not. present(status)) then
      write(error_unit, '(a)') problem
      error stop 2
    end if
  end subroutine conclude

  real(dp) function nan()
    nan = ieee_value(0.0_dp, ieee_quiet_nan)
  end function nan

  ! =============================================================================================
  ! The model, on blocks of points
  ! =============================================================================================

  !> 1 - r, r the albedo of a semi-infinite layer, at wavelength k of a layer of inverse SSA x
  !> and impurities soot_x = soot / ssa, dust_x = dust / ssa (the layer optics of block_features).
  real(dp) function semi_infinite_coalbedo(k, x, soot_x, dust_x) result(rho)
    integer, intent(in) :: k
    real(dp), intent(in) :: x, soot_x, dust_x
    real(dp) :: g, coalbedo, e, t
    g = c_ginf(k) - c_gspan(k)*exp(c_minus_y(k)*x)
    coalbedo = soot_x*c_soot(k) + dust_x*c_dust(k) + c_clean(k)*clean_coalbedo(k, x)
    e = 1 - g*(1 - coalbedo)
    t = sqrt(4.0_dp/3*coalbedo*e)
    rho = 2*t/(t + e)
  end function semi_infinite_coalbedo

  !> (1 - exp(-phi c)) / 2 at wavelength k of a layer of inverse SSA x, as
  !> features.TwoStreamOptics.layer_optics computes it: q / (1 + q), q = tanh(phi c / 2), or
  !> where ice hardly absorbs (weak) the series h (1 - h + 2/3 h^2 - 1/3 h^3), h = phi c / 2.
  elemental real(dp) function clean_coalbedo(k, x) result(clean)
    integer, intent(in) :: k
    real(dp), intent(in) :: x
    real(dp) :: h
    h = c_half_phi(k)*x
    if (weak(k)) then
      clean = h*(1 + h*(-1 + h*(2.0_dp/3 - h/3)))
    else
      h = tanh(h)
      clean = h/(h + 1)
    end if
  end function clean_coalbedo

  !> OpticalBudget.forward for the points p0 .. p0 + n - 1 (n <= NB) of the caller's arrays, all
  !> of them at once, written into the caller's outputs at those points: every inner loop runs
  !> over the block's points (vectorised, independent where the sweeps over layers are
  !> sequential), the network's weights are read once per block.
  !> A partial block is padded with copies of its first point, so that every inner loop has the
  !> fixed length NB (no scalar remainder: a point's numbers do not depend on its place in a block
  !> or on the size of the call).
  recursive subroutine block_budget(p0, n, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                    soil_albedo, cos_zenith, albedo_out, absorbed_out, soil_out, valid)
    integer, intent(in) :: p0, n
    real(dp), intent(in) :: dz(:, :), ssa(:, :), density(:, :), soot(:, :), dust(:, :)
    real(dp), intent(in) :: cos_illum(:), direct_sw(:), diffuse_sw(:)
    real(dp), intent(in), optional :: soil_albedo(:), cos_zenith(:)
    ! the caller's outputs, of which the block's points p0 .. p0 + n - 1 are written
    real(dp), intent(inout) :: albedo_out(:), absorbed_out(:, :), soil_out(:)
    logical, intent(out) :: valid  ! every input value of the block valid; else nothing is computed
    real(dp) :: albedo(NB), absorbed(NB, MAXL), soil(NB)
    real(dp) :: layers(NB, MAXL, 5)              ! the block's layers
    real(wp) :: shares(NB, MAXL + 1, MAXW)       ! as block_features gives them
    real(dp) :: inv_total(NB, MAXW)              ! and the inverse of their sums
    real(wp) :: a(NB, MAX_WIDTH), b(NB, MAX_WIDTH)  ! the network's activations, point index first
    real(wp) :: w(4, 4)  ! the weights of four inputs (rows) to four outputs
    real(dp) :: fraction(NB), light(NB, 3)  ! light: cos_illum, direct_sw, diffuse_sw
    real(dp) :: ground(NB), zenith(NB)  ! the soil albedo and zenith cosine of each point (point_zenith)
    logical :: present(NB, MAXL), known(NB), dark(NB), there
    integer :: i, l, j, jl, il, nl, n_in, n_out, faults
    nl = size(dz, 2)
    ! copied column by column and checked in the same loop, over the block's n points (vectorised
    ! where the caller's arrays are contiguous; a loop that only copied would become a call to
    ! memmove per column). An absent layer's values, which may be anything (NaN included), are
    ! replaced by neutral ones (ssa and density 1, soot and dust 0) before anything computes with
    ! them: block_features then needs no branch on presence.
    faults = 0
    do l = 1, nl
      do i = 1, n
        there = dz(p0 + i - 1, l) > 0
        layers(i, l, 1) = dz(p0 + i - 1, l)
        layers(i, l, 2) = merge(ssa(p0 + i - 1, l), 1.0_dp, there)
        layers(i, l, 3) = merge(density(p0 + i - 1, l), 1.0_dp, there)
        layers(i, l, 4) = merge(soot(p0 + i - 1, l), 0.0_dp, there)
        layers(i, l, 5) = merge(dust(p0 + i - 1, l), 0.0_dp, there)
        if (.not. layer_valid(layers(i, l, 1), layers(i, l, 2), layers(i, l, 3), layers(i, l, 4), layers(i, l, 5))) &
             faults = faults + 1
      end do
    end do
    do i = 1, n
      ground(i) = point_soil_albedo(p0 + i - 1, soil_albedo)
      call point_zenith(p0 + i - 1, cos_zenith, zenith(i), known(i))
      light(i, 1) = cos_illum(p0 + i - 1)
      light(i, 2) = direct_sw(p0 + i - 1)
      light(i, 3) = diffuse_sw(p0 + i - 1)
      if (.not. point_valid(light(i, 1), light(i, 2), light(i, 3), ground(i), zenith(i))) faults = faults + 1
    end do
    valid = faults == 0
    if (.not. valid) return
    do i = n + 1, NB  ! the padding
      layers(i, 1:nl, :) = layers(1, 1:nl, :)
      light(i, :) = light(1, :)
      ground(i) = ground(1)
      zenith(i) = zenith(1)
      known(i) = known(1)
    end do
    call block_features(nl, layers, light, ground, zenith, known, a, shares, inv_total, fraction, present)

    ! The network, in the working precision: z-scores, linear layers with SiLU between them
    do j = 1, nf
      a(:, j) = (a(:, j) - feature_mean_w(j))/feature_std_w(j)
    end do
    n_in = nf
    do il = 1, nlin
      n_out = size(net(il)%b)
      ! four outputs at a time, their sums four inputs at a time (the weights padded with zeros
      ! to multiples of 4, the activations too): the 16 weights stay in registers through the
      ! loop over the block's points, which adds each input's product in order (the sums of one
      ! input at a time, to the bit)
      a(:, n_in + 1:4*((n_in + 3)/4)) = 0
      do jl = 1, n_out, 4
        do i = 1, NB
          b(i, jl) = net(il)%bw(jl)
          b(i, jl + 1) = net(il)%bw(jl + 1)
          b(i, jl + 2) = net(il)%bw(jl + 2)
          b(i, jl + 3) = net(il)%bw(jl + 3)
        end do
        do j = 1, n_in, 4
          w = net(il)%wt(j:j + 3, jl:jl + 3)
          do i = 1, NB
            b(i, jl) = b(i, jl) + w(1, 1)*a(i, j) + w(2, 1)*a(i, j + 1) + w(3, 1)*a(i, j + 2) + w(4, 1)*a(i, j + 3)
            b(i, jl + 1) = b(i, jl + 1) + w(1, 2)*a(i, j) + w(2, 2)*a(i, j + 1) + w(3, 2)*a(i, j + 2) &
                           + w(4, 2)*a(i, j + 3)
            b(i, jl + 2) = b(i, jl + 2) + w(1, 3)*a(i, j) + w(2, 3)*a(i, j + 1) + w(3, 3)*a(i, j + 2) &
                           + w(4, 3)*a(i, j + 3)
            b(i, jl + 3) = b(i, jl + 3) + w(1, 4)*a(i, j) + w(2, 4)*a(i, j + 1) + w(3, 4)*a(i, j + 2) &
                           + w(4, 4)*a(i, j + 3)
          end do
        end do
      end do
      if (il < nlin) then
        ! SiLU, z sigmoid(z); exp(-z) overflows to +Inf for z < -88, giving -0
        do jl = 1, n_out
          !$omp simd
          do i = 1, NB
            a(i, jl) = b(i, jl)/(1 + exp(-b(i, jl)))
          end do
        end do
      end if
      n_in = n_out
    end do
    call block_mixture(nl, b, shares, inv_total, fraction, present, albedo, absorbed, soil)
    ! Night and no light (see the module's header): dark points and points without snow. The
    ! outputs copied to the caller's arrays in the same loops (a loop that only copied would
    ! become a call to memmove per column)
    do i = 1, n
      dark(i) = light(i, 2) + light(i, 3) <= DAYLIGHT_MIN .or. (known(i) .and. zenith(i) <= DAYLIGHT_MIN) &
                .or. .not. any(present(i, 1:nl))
      albedo_out(p0 + i - 1) = merge(1.0_dp, albedo(i), dark(i))
      soil_out(p0 + i - 1) = merge(0.0_dp, soil(i), dark(i))
    end do
    do l = 1, nl
      do i = 1, n
        absorbed_out(p0 + i - 1, l) = merge(0.0_dp, absorbed(i, l), dark(i))
      end do
    end do
  end subroutine block_budget

  !> The first part of OpticalBudget.forward for the NB points of a block, layers(i, 1..nl,
  !> variable) top first, light(i, :) cos_illum, direct_sw and diffuse_sw, over soils of albedo
  !> ground(i), cos_zenith(i) where known(i): Crocus's rules, the layer optics and the diffuse
  !> sweeps at each wavelength, and from them the features, in features(i, 1..nf); shares(i, l, k)
  !> what layer l takes of wavelength k's diffuse absorption (l = MAXL + 1: the soil), 0 in absent
  !> layers, and inv_total(i, k) the inverse of their sum; the direct fraction after Crocus's
  !> rules; which layers are present.
  !> The decisions (Crocus's rules, the depths of SURFEX's truncation) are taken in double
  !> precision, the optics, the sweeps and the features computed in the working precision wp, as
  !> the Python model computes them in float32 (twice as many points per vector instruction).
  recursive subroutine block_features(nl, layers, light, ground, zenith, known, features, shares, inv_total, &
                                      fraction, present)
    integer, intent(in) :: nl
    real(dp), intent(in) :: layers(NB, MAXL, 5), light(NB, 3), ground(NB), zenith(NB)
    logical, intent(in) :: known(NB)
    real(wp), intent(inout) :: features(NB, MAX_WIDTH)
    real(wp), intent(out) :: shares(NB, MAXL + 1, MAXW)
    real(dp), intent(out) :: inv_total(NB, MAXW), fraction(NB)
    logical, intent(out) :: present(NB, MAXL)
    ! per point and layer, at the wavelength of the moment
    real(wp), dimension(NB, MAXL) :: inv_ssa, soot_x, dust_x, minus_depth, rho, half, opaque
    ! 1 in present layers, 0 in absent ones: present as a number, to blend by (the sweeps)
    real(wp), dimension(NB, MAXL) :: layer_there
    real(wp), dimension(NB, MAXL + 1) :: pn, pd
    real(wp), dimension(NB, MAXL) :: inv_pd  ! 1 / pd before its rescaling, at the layers rescaled
    real(wp), dimension(NB) :: net_above, down, clean
    real(wp), dimension(NB) :: optical_w  ! optical, 2 ke tau* from the surface, summed in wp as in Python
    real(dp), dimension(NB) :: depth, optical, total, cos_illum, direct, diffuse
    real(dp) :: s, so, du, c, sw, inv
    logical :: ice
    real(wp) :: g, coalbedo, e, t, exponent, x, series, r, f2, opacity, rh, q, net_below, h, new_pn, new_pd
    real(wp) :: k_minus_y, k_half_phi, k_ginf, k_gspan, k_clean, k_soot, k_dust, series_limit
    real(dp) :: deep  ! the optical depth from the surface below which the sweeps stop
    integer :: m(NB), kept(NB)  ! kept: the deepest layer SURFEX's truncation keeps at the wavelength
    integer :: i, l, l0, l1, k, j, jd, deepest, reach, last, group, described

    ! Crocus's rules (features.crocus_rules): ice layers, the SSA guard, the sun behind the slope,
    ! Dumont's split of forcing without diffuse light
    m = 0  ! the last present layer of each point: below it nothing changes
    depth = 0
    ! (branch-free, vectorised: block_budget gave absent layers neutral values, ssa and density
    ! 1, soot and dust 0, which give the Python model's absent layers, inv_ssa 1 and the others 0)
    do l = 1, nl
      do i = 1, NB
        present(i, l) = layers(i, l, 1) > 0
        layer_there(i, l) = merge(1, 0, present(i, l))
        m(i) = merge(l, m(i), present(i, l))
        depth(i) = depth(i) + layers(i, l, 1)
        ice = layers(i, l, 3) >= ice_density
        s = merge(ssa_replacement, layers(i, l, 2), layers(i, l, 2) > ssa_anomaly)
        s = merge(ice_ssa, s, ice)
        so = merge(ice_soot, layers(i, l, 4), ice)
        du = merge(0.0_dp, layers(i, l, 5), ice)
        inv = 1/s  ! one division (in double precision: the float32 quotients once rounded)
        inv_ssa(i, l) = real(inv, wp)
        soot_x(i, l) = real(so*inv, wp)
        dust_x(i, l) = real(du*inv, wp)
        ! minus the two-way optical depth over its delta-scaled factor: -1.5 density ssa dz (+0
        ! in absent layers, as the Python model has it)
        minus_depth(i, l) = real(0 - 1.5_dp*layers(i, l, 3)*s*layers(i, l, 1), wp)
      end do
    end do
    deepest = maxval(m)
    do i = 1, NB
      cos_illum(i) = light(i, 1)
      direct(i) = light(i, 2)
      diffuse(i) = light(i, 3)
      if (cos_illum(i) < cos_illum_min) then
        cos_illum(i) = diffuse_cos
        diffuse(i) = direct(i) + diffuse(i)
        direct(i) = 0
      else if (diffuse(i) == 0 .and. known(i)) then
        c = zenith(i)
        sw = direct(i) + diffuse(i)
        diffuse(i) = sw*dumont_fraction(c)
        direct(i) = sw - diffuse(i)
      end if
      if (direct(i) + diffuse(i) > 0) then
        fraction(i) = direct(i)/(direct(i) + diffuse(i))
      else
        fraction(i) = 0  ! night: any finite value; block_budget sets the outputs of dark points
      end if
    end do

    deep = OPTICALLY_DEEP
    if (truncation) deep = min(OPTICALLY_DEEP, truncation_depth)
    described = max(nd, ndp)  ! the top layers the features describe: the sweeps compute them at least
    series_limit = real(opacity_series, wp)
    do k = 1, nw
      k_minus_y = real(c_minus_y(k), wp)
      k_half_phi = real(c_half_phi(k), wp)
      k_ginf = real(c_ginf(k), wp)
      k_gspan = real(c_gspan(k), wp)
      k_clean = real(c_clean(k), wp)
      k_soot = real(c_soot(k), wp)
      k_dust = real(c_dust(k), wp)
      ! Layer optics (features.TwoStreamOptics.layer_optics), rearranged: with the co-albedo
      ! 1 - omega, e = 1 - g omega and t = sqrt(4/3 (1 - omega) e), the delta-scaled
      ! s = sqrt(4/3 (1 - omega*) / (1 - g* (1 - omega*))) of the Python code is t / e, so
      ! rho = 1 - r = 2 s / (1 + s) = 2 t / (t + e), and the two-way transmission is
      ! f2 = exp(-1.5 density ssa dz t): the delta-scaling factor 1 - g^2 omega cancels out.
      ! half = sqrt(f2).
      ! CHUNK layers at a time, down to the layer `last` where, for every point, the product of
      ! the f2 from the surface has fallen below exp(-OPTICALLY_DEEP) = 1e-40 (or the pack has
      ! ended): the diffuse light reaching deeper is below 1e-20 of the incident, and what lies
      ! deeper changes the co-albedos above by less than 1e-39; it is dropped (the Python model
      ! computes it, to the same float32 numbers).
      ! The top `described` layers, which the features describe, are always computed (or lie below
      ! the deepest present layer of the block, absent in every point).
      ! The shallow wavelengths (the last nsh, near infrared) on the top lsh layers only, over
      ! semi-infinite snow where the pack goes on (features.TwoStreamOptics.group_budget): the
      ! `group` of layers of the wavelength.
      ! With truncation, SURFEX's truncation (features.TwoStreamOptics.truncated; docs/labels.md,
      ! step 2, point 3): from the second layer on, the first layer where the two-way optical depth
      ! from the surface through it (optical, summed in double precision) exceeds truncation_depth
      ! = 2 tau_truncation is dropped with all below it, the group's absent layers included; kept
      ! is the deepest layer left. The sweeps then stop where, for every point, the layers below
      ! are dropped (`deep`): what they would give is 0.
      group = MAXL
      if (k > nw - nsh) group = lsh
      reach = min(deepest, group)
      optical = 0
      optical_w = 0
      kept = MAXL
      last = reach
      jd = 2*nw*(1 + nd) + (k - 1)*ndp  ! the optical depths' features of the wavelength: jd + 1 .. jd + ndp
      do l0 = 1, reach, CHUNK
        l1 = min(l0 + CHUNK - 1, reach)
        do l = l0, l1
          if (weak(k)) then
            do i = 1, NB
              h = k_half_phi*inv_ssa(i, l)
              clean(i) = h*(1 + h*(-1 + h*(2.0_wp/3 - h*(1.0_wp/3))))
            end do
          else
            do i = 1, NB
              h = tanh(k_half_phi*inv_ssa(i, l))
              clean(i) = h/(h + 1)
            end do
          end if
          !$omp simd private(g, coalbedo, e, t, exponent, x, series)
          do i = 1, NB
            g = k_ginf - k_gspan*exp(k_minus_y*inv_ssa(i, l))
            coalbedo = soot_x(i, l)*k_soot + dust_x(i, l)*k_dust + k_clean*clean(i)
            e = 1 - g*(1 - coalbedo)
            t = sqrt(4.0_wp/3*coalbedo*e)
            exponent = minus_depth(i, l)*t
            ! f2 no smaller than exp(-87), a normal number, as the Python model has it
            ! (utils.two_stream.exp_nonpositive): nothing slows on subnormal numbers
            half(i, l) = exp(0.5_wp*max(exponent, -87.0_wp))
            ! the opacity 1 - f2, by its series where the layer is thin: both computed and one
            ! chosen without a branch, so that the loop vectorises (and its exp are vector calls).
            ! The series' argument x is bounded where it is not used, so that it cannot overflow;
            ! its Horner steps are statements of their own: gfortran keeps parentheses as
            ! operations that "could trap", which no vectorised loop may compute conditionally.
            ! (Its coefficients, as the weak series' above, are products by constants: a
            ! division by 120 would be a vector division, as slow as a dozen products.)
            x = max(exponent, series_limit)
            series = x*(1.0_wp/120) + 1.0_wp/24
            series = series*x + 1.0_wp/6
            series = series*x + 0.5_wp
            series = series*x + 1
            opaque(i, l) = merge(-x*series, 1 - half(i, l)**2, exponent > series_limit)
            rho(i, l) = 2*t/(t + e)
            optical(i) = optical(i) - real(exponent, dp)
            optical_w(i) = optical_w(i) - exponent
          end do
          ! the feature of the optical depth 2 ke tau* from the surface through the layer, summed
          ! from the top in the working precision as the Python model sums its float32 -2 ke tau*
          ! (features.TwoStreamOptics.optical_depth)
          if (l <= ndp) then
            do i = 1, NB
              features(i, jd + l) = log(max(optical_w(i), optical_depth_floor_w))
            end do
          end if
          if (truncation .and. l > 1) then
            do i = 1, NB
              kept(i) = merge(min(kept(i), l - 1), kept(i), optical(i) > truncation_depth)
            end do
          end if
        end do
        if (l1 >= described .and. l1 < reach) then
          if (all(optical > deep .or. m <= l1)) then
            last = l1
            exit
          end if
        end if
      end do

      ! Diffuse sweeps (features.TwoStreamOptics.diffuse_coalbedo, diffuse_absorbed). Up from
      ! the soil, the co-albedo P of what lies under each layer: through a layer,
      ! P' = (b + a P) / (d + c P) with a = (r + f2) rho, b = rho^2 (1 - f2), c = (1 - f2) r,
      ! d = (1 + f2 r) rho. Carried as a ratio P = pn / pd, the recursion needs no division
      ! (which would lie on its critical path); both are rescaled every 4 layers (at fixed
      ! layers, whatever the block), between which each shrinks by at most 1e-3 per layer (rho
      ! >= 1e-3 with SSA <= 100): far from the smallest float32. An absent layer passes P through
      ! unchanged, as the Python model has it. Under the last layer of an optically deep pack,
      ! P is that layer's own rho: a semi-infinite layer of its snow. With truncation, P is 0 (a
      ! white floor) on top of every dropped layer, and under the last layer computed where the
      ! group's last layer is dropped, as the Python model has it: where optical, the depth
      ! through the last layer computed, exceeds truncation_depth (the group's layers below are
      ! absent, which add no depth, or lie under the cut of the sweeps at `deep`, where optical
      ! exceeds truncation_depth); so the dropped layers and the soil absorb nothing.
      ! (rho(i, max(last, 1)): a block without snow has last = 0, and its points the soil)
      do i = 1, NB
        pn(i, last + 1) = merge(rho(i, max(last, 1)), real(1 - ground(i), wp), m(i) > last)
        pd(i, last + 1) = 1
      end do
      if (truncation .and. group > 1) then
        do i = 1, NB
          pn(i, last + 1) = merge(0.0_wp, pn(i, last + 1), optical(i) > truncation_depth)
        end do
      end if
      ! (an absent layer's pass-through is a blend by its 0 or 1, exact, rather than a merge: gfortran
      ! moves the computation of a merge's arm into a branch, as an operation that "could trap",
      ! and no vectorised loop may compute it conditionally)
      do l = last, 1, -1
        !$omp simd private(rh, r, f2, opacity, new_pn, new_pd)
        do i = 1, NB
          rh = rho(i, l)
          r = 1 - rh
          f2 = half(i, l)**2
          opacity = opaque(i, l)
          new_pn = rh*rh*opacity*pd(i, l + 1) + (r + f2)*rh*pn(i, l + 1)
          new_pd = (f2*r + 1)*rh*pd(i, l + 1) + opacity*r*pn(i, l + 1)
          pn(i, l) = layer_there(i, l)*new_pn + (1 - layer_there(i, l))*pn(i, l + 1)
          pd(i, l) = layer_there(i, l)*new_pd + (1 - layer_there(i, l))*pd(i, l + 1)
        end do
        if (truncation) then
          do i = 1, NB
            pn(i, l) = merge(0.0_wp, pn(i, l), l > kept(i))
            pd(i, l) = merge(1.0_wp, pd(i, l), l > kept(i))
          end do
        end if
        if (mod(l, 4) == 1) then  ! at the surface too: P there, the diffuse co-albedo
          inv_pd(:, l) = 1/pd(:, l)
          pn(:, l) = pn(:, l)/pd(:, l)
          pd(:, l) = 1
        end if
      end do
      ! ... then the diffuse flux down from the surface, multiplied through each layer by
      ! t = sqrt(f2) rho (1 + r) / ((1 - f2) r P + (1 + f2 r) rho) (P below the layer), and
      ! the net flux at each interface, the flux times P there, falls by what each layer absorbs.
      ! With P = pn / pd below the layer, the denominator (1 - f2) r pn + (1 + f2 r) rho pd is
      ! the sweep up's pd of the layer itself (the same sum), before its rescaling: so the flux
      ! is carried divided by pd at the top of each layer, down / pd, which each layer multiplies
      ! by t' = sqrt(f2) rho (1 + r) (1 in an absent layer, whose pd is that below it), times
      ! 1 / pd before the rescaling at the layers rescaled (where pd was set to 1; and at the
      ! dropped layers of SURFEX's truncation, whose pd is 1, and whose net flux pn is 0). The
      ! net flux below the layer is then (down / pd) pn there: one multiplication per layer on
      ! the chain of the flux, a division at one layer in 4 (in the sweep up; the same fluxes as a
      ! division by each layer's denominator, to float32 rounding). An absent layer passes the
      ! flux through and absorbs nothing, as the Python model has it.
      net_above = pn(:, 1)
      down = 1  ! down / pd at the surface, where pd = 1
      do l = 1, last
        if (mod(l, 4) == 1) then
          !$omp simd private(rh, q, net_below)
          do i = 1, NB
            rh = rho(i, l)
            q = layer_there(i, l)*(half(i, l)*rh*(2 - rh)) + (1 - layer_there(i, l))
            down(i) = down(i)*q*inv_pd(i, l)
            net_below = layer_there(i, l)*(down(i)*pn(i, l + 1)) + (1 - layer_there(i, l))*net_above(i)
            shares(i, l, k) = max(net_above(i) - net_below, 0.0_wp)
            net_above(i) = net_below
          end do
        else
          !$omp simd private(rh, q, net_below)
          do i = 1, NB
            rh = rho(i, l)
            q = layer_there(i, l)*(half(i, l)*rh*(2 - rh)) + (1 - layer_there(i, l))
            down(i) = down(i)*q
            net_below = layer_there(i, l)*(down(i)*pn(i, l + 1)) + (1 - layer_there(i, l))*net_above(i)
            shares(i, l, k) = max(net_above(i) - net_below, 0.0_wp)
            net_above(i) = net_below
          end do
        end if
      end do
      ! below `last`: an optically deep pack's remaining flux (< 1e-20) to the next layer, the
      ! soil takes the rest of the others
      shares(:, last + 1:nl, k) = 0
      do i = 1, NB
        if (m(i) > last) then
          shares(i, last + 1, k) = max(net_above(i), 0.0_wp)
          shares(i, MAXL + 1, k) = 0
        else
          shares(i, MAXL + 1, k) = max(net_above(i), 0.0_wp)
        end if
      end do

      ! Features of this wavelength: log co-albedo, the top layer's share, log(1 - r) and 1 - f2
      ! of the top nd layers, and (above, as the layers are computed) the log optical depths
      ! through the top ndp layers; those below `last`, absent (last = reach < described), add
      ! nothing to the depth through the last one computed
      do i = 1, NB
        features(i, k) = log(max(pn(i, 1), coalbedo_floor_w))
        features(i, nw + k) = 0
        if (m(i) >= 1) features(i, nw + k) = shares(i, 1, k)
      end do
      do l = 1, nd
        j = 2*nw + (k - 1)*nd + l
        if (l <= last) then
          features(:, j) = log(rho(:, l))
          features(:, j + nw*nd) = 1 - half(:, l)**2
        else
          features(:, j) = log(real(rho_absent(k), wp))
          features(:, j + nw*nd) = 0
        end if
      end do
      do l = last + 1, ndp
        features(:, jd + l) = log(max(optical_w, optical_depth_floor_w))
      end do

      ! The sum of its shares, in double precision (block_mixture normalises them by it, so
      ! that the budget closes to double rounding); layers missing inside the pack take nothing
      ! (their shares are float32 rounding noise, left out of the sum: the Python model counts
      ! them in it, a difference below its rounding)
      total = shares(:, MAXL + 1, k)
      do l = 1, min(last + 1, nl)
        !$omp simd
        do i = 1, NB
          shares(i, l, k) = shares(i, l, k)*layer_there(i, l)
          total(i) = total(i) + shares(i, l, k)
        end do
      end do
      inv_total(:, k) = 1/total
    end do
    features(:, nf - 2) = real(cos_illum, wp)
    features(:, nf - 1) = real(log(max(depth, depth_floor)), wp)
    features(:, nf) = real(ground, wp)
  end subroutine block_features

  !> The end of OpticalBudget.forward for the NB points of a block, from the network's outputs
  !> out(i, :): under direct light (il = 1) and diffuse light (il = 2), an albedo and the weights
  !> of the nw wavelength distributions and the ns surface layers (those of absent layers carry
  !> nothing: left out of the softmax), combined with the direct fraction. In double precision,
  !> from the working-precision outputs and shares: the budget closes to double rounding.
  recursive subroutine block_mixture(nl, out, shares, inv_total, fraction, present, albedo, absorbed, soil)
    integer, intent(in) :: nl
    real(wp), intent(in) :: out(NB, MAX_WIDTH), shares(NB, MAXL + 1, MAXW)
    real(dp), intent(in) :: inv_total(NB, MAXW), fraction(NB)
    logical, intent(in) :: present(NB, MAXL)
    real(dp), intent(out) :: albedo(NB), absorbed(NB, MAXL), soil(NB)
    real(dp) :: spread(NB, MAXW + MAXL), weights(NB, MAXW + MAXL), logit(NB, MAXW + MAXL)
    real(dp), dimension(NB) :: illumination_weight, albedo_i, top, total
    integer :: il, j, k, l
    albedo = 0
    spread(:, 1:nc) = 0
    do il = 1, 2
      j = (il - 1)*(1 + nc)  ! out(i, j + 1): the albedo's logit, out(i, j + 2 : j + 1 + nc): the weights'
      albedo_i = 1/(1 + exp(-real(out(:, j + 1), dp)))
      ! the surface components of absent layers take no weight: left out of the softmax, so that
      ! the weights of each mixture sum to 1 even where the logits saturate it
      do k = 1, nc
        logit(:, k) = out(:, j + 1 + k)
      end do
      do l = 1, ns
        if (l > nl) then
          logit(:, nw + l) = -huge(1.0_dp)
        else
          where (.not. present(:, l)) logit(:, nw + l) = -huge(1.0_dp)
        end if
      end do
      top = logit(:, 1)
      do k = 2, nc
        top = max(top, logit(:, k))
      end do
      total = 0
      do k = 1, nc
        weights(:, k) = exp(max(logit(:, k) - top, -huge(1.0_dp)))
        total = total + weights(:, k)
      end do
      do k = 1, nc
        weights(:, k) = weights(:, k)/total
      end do
      if (il == 1) then
        illumination_weight = fraction
      else
        illumination_weight = 1 - fraction
      end if
      albedo = albedo + illumination_weight*albedo_i
      total = illumination_weight*(1 - albedo_i)
      do k = 1, nc
        spread(:, k) = spread(:, k) + total*weights(:, k)
      end do
    end do
    ! each wavelength's share of 1 - albedo spread as that wavelength's diffuse light is absorbed
    absorbed(:, 1:nl) = 0
    soil = 0
    do k = 1, nw
      total = spread(:, k)*inv_total(:, k)
      do l = 1, nl
        absorbed(:, l) = absorbed(:, l) + shares(:, l, k)*total
      end do
      soil = soil + shares(:, MAXL + 1, k)*total
    end do
    do l = 1, min(ns, nl)
      absorbed(:, l) = absorbed(:, l) + spread(:, nw + l)
    end do
  end subroutine block_mixture

  elemental real(dp) function sigmoid(z)
    real(dp), intent(in) :: z
    real(dp) :: ez
    if (z >= 0) then
      sigmoid = 1/(1 + exp(-z))
    else
      ez = exp(z)
      sigmoid = ez/(1 + ez)
    end if
  end function sigmoid

  ! =============================================================================================
  ! The drop-in for Crocus
  ! =============================================================================================

  !> tartes_emulator_snowcro_tartes: SURFEX's SNOWCRO_TARTES (mode_tartes.F90) with the emulator in
  !> place of TARTES. The same 27 arguments in the same order, with the same declarations
  !> (docs/crocus_coupling.md), so that in snowcro.F90 only the called name and the USE line change:
  !>
  !>     USE TARTES_EMULATOR, ONLY : TARTES_EMULATOR_SNOWCRO_TARTES
  !>     CALL TARTES_EMULATOR_SNOWCRO_TARTES(PSNOWGRAN1, PSNOWGRAN2, ..., PSPEC_DIF, OATMORAD)
  !>
  !> What it does, as SNOWCRO_TARTES does (docs/labels.md, steps 0 to 3):
  !>  1. the outputs are first set: PSNOWALB = 1, PRADSINK = 0, PRADXS = 0, PSNOWALB_SP = 1e20,
  !>     PSPEC_DIR = PSPEC_DIF = 0 (and PSNOWALB_FB = 1e20 when passed);
  !>  2. only daylight points go further, cos(PZENITH) > 1e-8 and PSW_RAD > 1e-8: the others keep
  !>     these values, SURFEX's own (the project's dark-row contract);
  !>  3. the light: the diffuse fraction of PSW_RAD is the point's sum(P_SCA_SW) / (sum(P_SCA_SW) +
  !>     sum(P_DIR_SW)), direct = PSW_RAD - diffuse; the sun behind the slope (cos(PANGL_ILLUM) <
  !>     0.0017) makes it all diffuse; forcing without diffuse light (sum(P_SCA_SW) = 0) is split by
  !>     Dumont's diffuse fraction of cos(PZENITH). That rule is applied to its point only: SURFEX
  !>     writes the fraction into the whole array of the call (the points before it in the call are
  !>     split by it too), a defect not reproduced here. PSPEC_DIR(:, b) = XPRATIO_DIR(b) x direct
  !>     and PSPEC_DIF(:, b) = XPRATIO_DIF(b) x diffuse in the 111 TARTES bands, 0 beyond;
  !>  4. the layers 1..KNLVLS_USE of each point (the layers below are not read): impurity contents
  !>     (g/g) = PSNOWIMPUR / (1000 PSNOWRHO PSNOWDZ), type 1 soot, type 2 dust; the optical
  !>     diameter PSNOWGRAN1, or with HSNOWMETAMO = 'B92' GET_DIAM's formula of PSNOWGRAN1 and
  !>     PSNOWGRAN2; SSA = 6 / (917 d). Crocus's layer rules (ice layers, density >= 850: SSA 0.05,
  !>     soot 100e-9, no dust; an SSA above 100 becomes 70) are the model's own, applied once, inside
  !>     the emulator (block_features), as the Python model applies them: the contents of ice layers
  !>     are computed like the others' and replaced there;
  !>  5. the emulator's energy budget (tartes_emulator_crocus) of the daylight points with snow, over
  !>     a ground of albedo PALB, with cos(PANGL_ILLUM) and cos(PZENITH): PSNOWALB the albedo,
  !>     PRADSINK(p, l) = -PSW_RAD (1 - albedo - sum_{k<=l} absorbed_k) for l <= KNLVLS_USE (<= 0,
  !>     computed as minus what lies below, never positive by rounding) and 0 below, PRADXS =
  !>     PSW_RAD x the soil's fraction.
  !> What it does not give: PSNOWALB_SP (the 111 band albedos) and PSNOWALB_FB (the albedo up to
  !> 800 nm) stay undefined, 1e20 (SURFEX's XUNDEF): the emulator computes the broadband budget only,
  !> and Crocus uses these two for diagnostics only (PSPEC_ALB). PDIRCOSZW is not read (SURFEX reads
  !> it with spectral forcing only). A point without snow (KNLVLS_USE = 0, which Crocus never passes)
  !> gets the dark-point values, but its PSPEC_DIR and PSPEC_DIF in daylight (the light does not
  !> depend on the snow).
  !>
  !> It stops (error stop, a message naming the point, the layer, the variable and the problem on
  !> the standard error) where it cannot emulate: OATMORAD true (spectral forcing from the
  !> atmosphere), shape parameters other than Crocus's constants 0.8961, 0.728, 0.0611, 1.225
  !> (relative tolerance 1e-6), NIMPUR = size(PSNOWIMPUR, 3) other than 2, a point of more than 50
  !> layers (KNLVLS_USE > 50; the arrays may have more columns), shapes that do not fit, and invalid
  !> values: KNLVLS_USE outside [0, NL]; in a point's layers a NaN or infinite value, PSNOWDZ <= 0,
  !> PSNOWRHO outside (0, 917], an optical diameter <= 0, an impurity load < 0; PALB outside [0, 1];
  !> PSW_RAD < 0 or not finite; PZENITH or PANGL_ILLUM not finite; P_DIR_SW, P_SCA_SW with a sum < 0
  !> or not finite, or both zero at a daylight point. Every point is checked, dark ones included.
  !>
  !> Points outside the emulator's domain (tartes_emulator_outside_domain, on the inputs after the
  !> steps above: beyond the ranges of its training data, or in SURFEX's clean-up regime, whose
  !> outputs depend on the flux magnitudes) are counted (tartes_emulator_outside_count), printed
  !> with ODEBUG, and the first one met without a registered routine is reported once on the
  !> standard error. When a routine was registered (tartes_emulator_register_fallback: inside
  !> SURFEX, SNOWCRO_TARTES itself) it computes them exactly: it is called once per call of the
  !> drop-in on the subset of those points (every argument's rows of those points, in their order;
  !> the emulator's values of the other points are not touched), and all its outputs replace the
  !> drop-in's there (PSNOWALB_SP and the spectral ones included).
  !>
  !> Weights: those of tartes_emulator_load, or, when it was not called, at the first call those of
  !> the file the environment variable TARTES_EMULATOR_WEIGHTS names (ensure_weights). Under
  !> OpenMP the first call may come from inside a parallel region: one thread loads, the others
  !> wait. With MPI, each task loads its own copy at its first call.
  !>
  !> ODEBUG: one line per computed point (point, layers, SW, diffuse fraction, albedo, PRADXS,
  !> outside the domain or not) on the standard output.
  recursive subroutine tartes_emulator_snowcro_tartes(psnowgran1, psnowgran2, psnowrho, psnowdz, psnowg0, psnowy0, &
                                                      psnoww0, psnowb0, psnowimpur, palb, psw_rad, pzenith, &
                                                      pangl_illum, pdircoszw, knlvls_use, psnowalb, pradsink, pradxs, &
                                                      odebug, hsnowmetamo, p_dir_sw, p_sca_sw, psnowalb_sp, &
                                                      pspec_dir, pspec_dif, oatmorad, psnowalb_fb)
    real(8),      dimension(:,:),   intent(in)  :: psnowgran1, psnowgran2, psnowrho, psnowdz
    real(8),      dimension(:,:),   intent(in)  :: psnowg0, psnowy0, psnoww0, psnowb0
    real(8),      dimension(:,:,:), intent(in)  :: psnowimpur          ! (P, NL, NIMPUR)
    real(8),      dimension(:),     intent(in)  :: palb, psw_rad, pzenith, pangl_illum, pdircoszw
    integer,      dimension(:),     intent(in)  :: knlvls_use
    real(8),      dimension(:),     intent(out) :: psnowalb
    real(8),      dimension(:,:),   intent(out) :: pradsink
    real(8),      dimension(:),     intent(out) :: pradxs
    logical,                        intent(in)  :: odebug
    character(3),                   intent(in)  :: hsnowmetamo
    real(8),      dimension(:,:),   intent(in)  :: p_dir_sw, p_sca_sw   ! (P, NB)
    real(8),      dimension(:,:),   intent(out) :: psnowalb_sp          ! (P, NB)
    real(8),      dimension(:,:),   intent(out) :: pspec_dir, pspec_dif ! (P, NB)
    logical,                        intent(in)  :: oatmorad
    real(8),      dimension(:),     intent(out), optional :: psnowalb_fb
    character(len=*), parameter :: ROUTINE = 'tartes_emulator_snowcro_tartes'
    ! per point: the sums of the spectral forcing, the cosines, daylight
    real(dp), allocatable, dimension(:) :: direct_sum, diffuse_sum, cos_zenith_all
    logical, allocatable :: daylight(:)
    ! the daylight points with snow, gathered: the caller's index of each, their layers and light
    integer, allocatable :: points(:)
    real(dp), allocatable, dimension(:, :) :: dz, ssa, density, soot, dust, sink
    real(dp), allocatable, dimension(:) :: cos_illum, cos_zenith, direct, diffuse, ground_albedo, albedo, xs
    real(dp), allocatable, dimension(:) :: direct_forcing, diffuse_forcing  ! before the light rules
    logical, allocatable :: outside(:)
    real(dp), allocatable :: light(:, :)  ! per point: direct, diffuse, and before the rules (0 if dark)
    real(dp) :: d, load_to_content
    logical :: b92
    integer :: npts, n, nl, i, p, l, j

    call ensure_weights()
    psnowalb = 1
    pradsink = 0
    pradxs = 0
    psnowalb_sp = UNDEFINED
    if (present(psnowalb_fb)) psnowalb_fb = UNDEFINED
    call snowcro_check(ROUTINE, psnowgran1, psnowgran2, psnowrho, psnowdz, psnowg0, psnowy0, psnoww0, psnowb0, &
                       psnowimpur, palb, psw_rad, pzenith, pangl_illum, pdircoszw, knlvls_use, psnowalb, pradsink, &
                       pradxs, hsnowmetamo, p_dir_sw, p_sca_sw, psnowalb_sp, pspec_dir, pspec_dif, oatmorad, &
                       psnowalb_fb, direct_sum, diffuse_sum)
    b92 = hsnowmetamo == 'B92'
    npts = size(psw_rad)
    cos_zenith_all = cos(pzenith)
    daylight = cos_zenith_all > DAYLIGHT_MIN .and. psw_rad > DAYLIGHT_MIN
    n = count(daylight .and. knlvls_use > 0)
    nl = max(1, maxval(knlvls_use, mask=daylight))

    ! the light of the daylight points (before and after step 0); PSPEC_DIR and PSPEC_DIF band by
    ! band (contiguous along the points), 0 at dark points and beyond the 111 TARTES bands
    allocate(light(npts, 4))
    light = 0
    do p = 1, npts
      if (daylight(p)) call crocus_light(psw_rad(p), direct_sum(p), diffuse_sum(p), cos(pangl_illum(p)), &
                                         cos_zenith_all(p), light(p, 1), light(p, 2), light(p, 3), light(p, 4))
    end do
    do j = 1, N_TARTES_BANDS
      pspec_dir(:, j) = band_ratio_direct(j)*light(:, 1)
      pspec_dif(:, j) = band_ratio_diffuse(j)*light(:, 2)
    end do
    pspec_dir(:, N_TARTES_BANDS + 1:) = 0
    pspec_dif(:, N_TARTES_BANDS + 1:) = 0
    if (n == 0) return
    ! the daylight points with snow, gathered
    allocate(points(n), cos_illum(n), cos_zenith(n), direct(n), diffuse(n), ground_albedo(n), albedo(n), xs(n), &
             outside(n), direct_forcing(n), diffuse_forcing(n))
    allocate(dz(n, nl), ssa(n, nl), density(n, nl), soot(n, nl), dust(n, nl), sink(n, nl))
    i = 0
    do p = 1, npts
      if (.not. daylight(p) .or. knlvls_use(p) == 0) cycle
      i = i + 1
      points(i) = p
      cos_illum(i) = cos(pangl_illum(p))
      cos_zenith(i) = cos_zenith_all(p)
      ground_albedo(i) = palb(p)
      direct(i) = light(p, 1)
      diffuse(i) = light(p, 2)
      direct_forcing(i) = light(p, 3)
      diffuse_forcing(i) = light(p, 4)
    end do
    ! the layers, layer by layer (the caller's arrays are contiguous along the points)
    do l = 1, nl
      do i = 1, n
        p = points(i)
        if (l <= knlvls_use(p)) then
          dz(i, l) = psnowdz(p, l)
          density(i, l) = psnowrho(p, l)
          d = optical_diameter(b92, psnowgran1(p, l), psnowgran2(p, l))
          ssa(i, l) = 6/(SSA_ICE_DENSITY*d)
          load_to_content = 1/(1000*psnowrho(p, l)*psnowdz(p, l))  ! g m-2 -> g/g
          soot(i, l) = psnowimpur(p, l, 1)*load_to_content
          dust(i, l) = psnowimpur(p, l, 2)*load_to_content
        else  ! below the point's pack: absent (dz = 0), the rest ignored
          dz(i, l) = 0
          density(i, l) = 0
          ssa(i, l) = 0
          soot(i, l) = 0
          dust(i, l) = 0
        end if
      end do
    end do

    call tartes_emulator_crocus(dz, ssa, density, soot, dust, cos_illum, direct, diffuse, albedo, sink, xs, &
                                soil_albedo=ground_albedo, cos_zenith=cos_zenith)
    ! the domain of the training data, on the light before the rules, as the model was given it
    call tartes_emulator_outside_domain(dz, ssa, density, soot, dust, cos_illum, direct_forcing, diffuse_forcing, &
                                        outside, soil_albedo=ground_albedo, cos_zenith=cos_zenith)
    do l = 1, nl  ! PRADSINK of the point's layers (0 below, as set first), layer by layer
      do i = 1, n
        if (l <= knlvls_use(points(i))) pradsink(points(i), l) = sink(i, l)
      end do
    end do
    do i = 1, n
      p = points(i)
      psnowalb(p) = albedo(i)
      pradxs(p) = xs(i)
      if (odebug) write(output_unit, '(a, i0, a, i0, a, es12.5, a, f8.6, a, f8.6, a, es12.5, a, l1)') &
           ROUTINE//': point ', p, ', layers ', knlvls_use(p), ', SW ', psw_rad(p), ', diffuse fraction ', &
           diffuse(i)/psw_rad(p), ', albedo ', albedo(i), ', PRADXS ', xs(i), ', outside the domain ', outside(i)
    end do
    if (any(outside)) call outside_points_met(pack(points, outside))
  contains
    !> Counted, and computed by the registered routine if there is one (its outputs replace the
    !> drop-in's at those points), else reported once per process.
    subroutine outside_points_met(chosen)
      integer, intent(in) :: chosen(:)
      real(dp), allocatable :: f_albedo(:), f_sink(:, :), f_xs(:), f_sp(:, :), f_dir(:, :), f_dif(:, :), f_fb(:)
      integer :: m
      logical :: warn
      m = size(chosen)
      !$omp atomic update
      outside_points = outside_points + m
      if (.not. associated(fallback)) then
        !$omp critical (tartes_emulator_warning)
        warn = .not. extrapolation_warned
        extrapolation_warned = .true.
        !$omp end critical (tartes_emulator_warning)
        if (warn) write(error_unit, '(a)') ROUTINE//': point '//int_text(chosen(1))//' of a call is outside ' &
             //'the training domain of the emulator or in SURFEX''s clean-up regime: its outputs are the ' &
             //'emulator''s, unreliable (reported once; ' &
             //'tartes_emulator_outside_count() counts such points; tartes_emulator_register_fallback(SNOWCRO_TARTES) ' &
             //'has them computed by TARTES)'
        return
      end if
      allocate(f_albedo(m), f_sink(m, size(pradsink, 2)), f_xs(m), f_sp(m, size(psnowalb_sp, 2)), &
               f_dir(m, size(pspec_dir, 2)), f_dif(m, size(pspec_dif, 2)))
      if (present(psnowalb_fb)) then
        allocate(f_fb(m))
        call fallback(psnowgran1(chosen, :), psnowgran2(chosen, :), psnowrho(chosen, :), psnowdz(chosen, :), &
                      psnowg0(chosen, :), psnowy0(chosen, :), psnoww0(chosen, :), psnowb0(chosen, :), &
                      psnowimpur(chosen, :, :), palb(chosen), psw_rad(chosen), pzenith(chosen), pangl_illum(chosen), &
                      pdircoszw(chosen), knlvls_use(chosen), f_albedo, f_sink, f_xs, odebug, hsnowmetamo, &
                      p_dir_sw(chosen, :), p_sca_sw(chosen, :), f_sp, f_dir, f_dif, oatmorad, f_fb)
        psnowalb_fb(chosen) = f_fb
      else
        call fallback(psnowgran1(chosen, :), psnowgran2(chosen, :), psnowrho(chosen, :), psnowdz(chosen, :), &
                      psnowg0(chosen, :), psnowy0(chosen, :), psnoww0(chosen, :), psnowb0(chosen, :), &
                      psnowimpur(chosen, :, :), palb(chosen), psw_rad(chosen), pzenith(chosen), pangl_illum(chosen), &
                      pdircoszw(chosen), knlvls_use(chosen), f_albedo, f_sink, f_xs, odebug, hsnowmetamo, &
                      p_dir_sw(chosen, :), p_sca_sw(chosen, :), f_sp, f_dir, f_dif, oatmorad)
      end if
      psnowalb(chosen) = f_albedo
      pradsink(chosen, :) = f_sink
      pradxs(chosen) = f_xs
      psnowalb_sp(chosen, :) = f_sp
      pspec_dir(chosen, :) = f_dir
      pspec_dif(chosen, :) = f_dif
    end subroutine outside_points_met
  end subroutine tartes_emulator_snowcro_tartes

  !> Registers the routine that computes the points outside the emulator's domain in
  !> tartes_emulator_snowcro_tartes: inside SURFEX, SNOWCRO_TARTES itself (MODE_TARTES), so that
  !> this module builds without SURFEX. Call it once, before any parallel region (it writes a
  !> module variable that the drop-in reads).
  subroutine tartes_emulator_register_fallback(routine)
    procedure(tartes_emulator_snowcro_interface) :: routine
    fallback => routine
  end subroutine tartes_emulator_register_fallback

  !> The number of points outside the emulator's domain that tartes_emulator_snowcro_tartes has met
  !> in this process so far (on every thread), computed by the registered routine or, without one,
  !> by the emulator all the same.
  integer(i8) function tartes_emulator_outside_count()
    !$omp atomic read
    tartes_emulator_outside_count = outside_points
  end function tartes_emulator_outside_count

  !> The weights for the drop-in: nothing to do when tartes_emulator_load was called; else, at the
  !> first call, tartes_emulator_load of the file named by TARTES_EMULATOR_WEIGHTS, or a stop that
  !> says so when neither is there. A first call may come from several OpenMP threads at once:
  !> the flag weights_ready is read atomically and, while it is false, the load happens in a named
  !> critical section that checks again (double-checked), so that one thread loads and the others
  !> wait for it rather than race; the flush after a true flag makes the loaded weights visible.
  !> Without OpenMP the directives are comments. With MPI each task loads its own copy; a missing
  !> or faulty file stops the task with error stop, which in most MPI implementations aborts the
  !> job; a caller that wants MPI_ABORT calls tartes_emulator_load itself first (its own checks,
  !> before any parallel region).
  subroutine ensure_weights()
    logical :: ready
    integer :: length, variable_status
    character(len=:), allocatable :: path
    !$omp atomic read
    ready = weights_ready
    if (ready) then
      !$omp flush
      return
    end if
    !$omp critical (tartes_emulator_weights)
    if (.not. is_loaded) then
      call get_environment_variable(WEIGHTS_VARIABLE, length=length, status=variable_status)
      if (variable_status /= 0 .or. length == 0) call conclude(TARTES_EMULATOR_NOT_LOADED, &
           'tartes_emulator_snowcro_tartes: no emulator loaded: call tartes_emulator_load(path) first, or set ' &
           //'the environment variable '//WEIGHTS_VARIABLE//' to the weights file (python export.py --model ' &
           //'MODEL.pt --out DIR writes DIR/emulator_weights.txt)')
      allocate(character(len=length) :: path)
      call get_environment_variable(WEIGHTS_VARIABLE, value=path)
      call tartes_emulator_load(path)
    end if
    !$omp flush
    !$omp atomic write
    weights_ready = .true.
    !$omp end critical (tartes_emulator_weights)
  end subroutine ensure_weights

  !> Dumont's diffuse fraction of a forcing without diffuse light, on the cosine of the solar
  !> zenith angle (docs/labels.md, step 0; the coefficients of the weights file)
  elemental real(dp) function dumont_fraction(cos_zenith)
    real(dp), intent(in) :: cos_zenith
    dumont_fraction = exp(min(((dumont(1)*cos_zenith + dumont(2))*cos_zenith + dumont(3))*cos_zenith + dumont(4), 0.0_dp))
  end function dumont_fraction

  !> The direct and diffuse shortwave (W m-2) at a daylight point of global shortwave sw: split
  !> by the diffuse fraction of the sums of its spectral forcing (direct_forcing, diffuse_forcing),
  !> and as TARTES sees it, after Crocus's two light rules (step 0: direct, diffuse).
  elemental subroutine crocus_light(sw, direct_sum, diffuse_sum, cos_illum, cos_zenith, direct, diffuse, &
                                    direct_forcing, diffuse_forcing)
    real(dp), intent(in) :: sw, direct_sum, diffuse_sum, cos_illum, cos_zenith
    real(dp), intent(out) :: direct, diffuse, direct_forcing, diffuse_forcing
    diffuse_forcing = sw*(diffuse_sum/(diffuse_sum + direct_sum))
    direct_forcing = sw - diffuse_forcing
    if (cos_illum < cos_illum_min) then  ! the sun behind the slope: all diffuse
      diffuse = sw
    else if (diffuse_sum == 0) then  ! no diffuse light in the forcing: Dumont's split (block_features')
      diffuse = sw*dumont_fraction(cos_zenith)
    else
      diffuse = diffuse_forcing
    end if
    direct = sw - diffuse
  end subroutine crocus_light

  !> The optical diameter (m) of a layer: Crocus's GET_DIAM (mode_snow3l.F90). With B92 the grain
  !> variables are dendricity (< 0) or sphericity and sphericity or grain size (m); with every
  !> other scheme gran1 is the optical diameter itself.
  elemental real(dp) function optical_diameter(b92, gran1, gran2) result(d)
    logical, intent(in) :: b92
    real(dp), intent(in) :: gran1, gran2
    if (.not. b92) then
      d = gran1
    else if (gran1 < 0) then  ! dendritic snow
      d = (-gran1*B92_D1/B92_X + (1 + gran1/B92_X)*(gran2*B92_D2/B92_X + (1 - gran2/B92_X)*B92_D3))/10000
    else
      d = gran2*gran1/B92_X + max(0.0004_dp, gran2/2)*(1 - gran1/B92_X)
    end if
  end function optical_diameter

  !> The drop-in's checks (see tartes_emulator_snowcro_tartes): the first fault, in the order of
  !> the points, stops the program with a message naming it. The values are counted in memory
  !> order first (cheap; snowcro_point_valid, snowcro_layer_valid), the first fault is looked for
  !> only if there is one. direct_sum and diffuse_sum: the sums of P_DIR_SW and P_SCA_SW per point.
  subroutine snowcro_check(routine, psnowgran1, psnowgran2, psnowrho, psnowdz, psnowg0, psnowy0, psnoww0, psnowb0, &
                           psnowimpur, palb, psw_rad, pzenith, pangl_illum, pdircoszw, knlvls_use, psnowalb, pradsink, &
                           pradxs, hsnowmetamo, p_dir_sw, p_sca_sw, psnowalb_sp, pspec_dir, pspec_dif, oatmorad, &
                           psnowalb_fb, direct_sum, diffuse_sum)
    character(len=*), intent(in) :: routine
    real(dp), dimension(:, :), intent(in) :: psnowgran1, psnowgran2, psnowrho, psnowdz, psnowg0, psnowy0, psnoww0, &
                                             psnowb0, pradsink, p_dir_sw, p_sca_sw, psnowalb_sp, pspec_dir, pspec_dif
    real(dp), intent(in) :: psnowimpur(:, :, :)
    real(dp), dimension(:), intent(in) :: palb, psw_rad, pzenith, pangl_illum, pdircoszw, psnowalb, pradxs
    integer, intent(in) :: knlvls_use(:)
    character(3), intent(in) :: hsnowmetamo
    logical, intent(in) :: oatmorad
    real(dp), intent(in), optional :: psnowalb_fb(:)
    real(dp), allocatable, intent(out) :: direct_sum(:), diffuse_sum(:)
    real(dp), parameter :: big = huge(1.0_dp)
    character(len=:), allocatable :: problem
    real(dp) :: shape_values(4), d
    logical :: b92
    integer :: npts, nl, nb, p, l, j, faults

    if (oatmorad) call stop_with('OATMORAD is true (spectral forcing from the atmospheric scheme): the emulator ' &
         //'was trained on broadband forcing split by Crocus''s own spectral repartition; use SNOWCRO_TARTES')
    npts = size(psnowdz, 1)
    nl = size(psnowdz, 2)
    nb = size(p_dir_sw, 2)
    b92 = hsnowmetamo == 'B92'
    if (size(psnowimpur, 3) /= 2) call stop_with('NIMPUR = size(PSNOWIMPUR, 3) = '//int_text(size(psnowimpur, 3)) &
         //': the emulator was trained with 2 impurity types (1 soot, 2 dust)')
    ! shapes
    problem = ''
    if (any(shape(psnowgran1) /= shape(psnowdz))) problem = 'PSNOWGRAN1'
    if (any(shape(psnowgran2) /= shape(psnowdz))) problem = 'PSNOWGRAN2'
    if (any(shape(psnowrho) /= shape(psnowdz))) problem = 'PSNOWRHO'
    if (any(shape(psnowg0) /= shape(psnowdz))) problem = 'PSNOWG0'
    if (any(shape(psnowy0) /= shape(psnowdz))) problem = 'PSNOWY0'
    if (any(shape(psnoww0) /= shape(psnowdz))) problem = 'PSNOWW0'
    if (any(shape(psnowb0) /= shape(psnowdz))) problem = 'PSNOWB0'
    if (any(shape(pradsink) /= shape(psnowdz))) problem = 'PRADSINK'
    if (size(psnowimpur, 1) /= npts .or. size(psnowimpur, 2) /= nl) problem = 'PSNOWIMPUR'
    if (len(problem) > 0) call stop_with(problem//' is not shaped like PSNOWDZ (P, NL) = (' &
                                         //int_text(npts)//', '//int_text(nl)//')')
    if (size(palb) /= npts) problem = 'PALB'
    if (size(psw_rad) /= npts) problem = 'PSW_RAD'
    if (size(pzenith) /= npts) problem = 'PZENITH'
    if (size(pangl_illum) /= npts) problem = 'PANGL_ILLUM'
    if (size(pdircoszw) /= npts) problem = 'PDIRCOSZW'
    if (size(knlvls_use) /= npts) problem = 'KNLVLS_USE'
    if (size(psnowalb) /= npts) problem = 'PSNOWALB'
    if (size(pradxs) /= npts) problem = 'PRADXS'
    if (present(psnowalb_fb)) then
      if (size(psnowalb_fb) /= npts) problem = 'PSNOWALB_FB'
    end if
    if (len(problem) > 0) call stop_with(problem//' has not P = size(PSNOWDZ, 1) = '//int_text(npts)//' points')
    if (size(p_dir_sw, 1) /= npts .or. nb < N_TARTES_BANDS) call stop_with('P_DIR_SW must be (P, NB) = (' &
         //int_text(npts)//', NB) with NB >= '//int_text(N_TARTES_BANDS)//' bands, not (' &
         //int_text(size(p_dir_sw, 1))//', '//int_text(nb)//')')
    if (any(shape(p_sca_sw) /= shape(p_dir_sw))) problem = 'P_SCA_SW'
    if (any(shape(psnowalb_sp) /= shape(p_dir_sw))) problem = 'PSNOWALB_SP'
    if (any(shape(pspec_dir) /= shape(p_dir_sw))) problem = 'PSPEC_DIR'
    if (any(shape(pspec_dif) /= shape(p_dir_sw))) problem = 'PSPEC_DIF'
    if (len(problem) > 0) call stop_with(problem//' is not shaped like P_DIR_SW (P, NB) = (' &
                                         //int_text(npts)//', '//int_text(nb)//')')

    ! values: counted in memory order
    ! band by band over all the points: contiguous, vectorised (a call's few dozen points stay in
    ! the first-level cache), each point's sum in the order of the bands
    allocate(direct_sum(npts), diffuse_sum(npts))
    direct_sum = 0
    diffuse_sum = 0
    do j = 1, nb
      do p = 1, npts
        direct_sum(p) = direct_sum(p) + p_dir_sw(p, j)
        diffuse_sum(p) = diffuse_sum(p) + p_sca_sw(p, j)
      end do
    end do
    faults = 0
    do p = 1, npts
      if (.not. snowcro_point_valid(knlvls_use(p), nl, palb(p), psw_rad(p), pzenith(p), pangl_illum(p), &
                                    direct_sum(p), diffuse_sum(p))) faults = faults + 1
    end do
    do l = 1, min(nl, MAXL)
      do p = 1, npts
        if (l > knlvls_use(p)) cycle
        if (.not. snowcro_layer_valid(b92, psnowdz(p, l), psnowrho(p, l), psnowgran1(p, l), psnowgran2(p, l), &
                                      psnowg0(p, l), psnowy0(p, l), psnoww0(p, l), psnowb0(p, l), &
                                      psnowimpur(p, l, 1), psnowimpur(p, l, 2))) faults = faults + 1
      end do
    end do
    if (faults == 0) return

    ! the first fault, point by point
    do p = 1, npts
      if (knlvls_use(p) > MAXL .and. knlvls_use(p) <= nl) call stop_at(p, 0, 'KNLVLS_USE = ' &
           //int_text(knlvls_use(p))//' layers: the emulator takes at most '//int_text(MAXL))
      if (knlvls_use(p) < 0 .or. knlvls_use(p) > nl) call stop_at(p, 0, 'KNLVLS_USE = '//int_text(knlvls_use(p)) &
           //' is not in [0, NL = '//int_text(nl)//']')
      if (.not. (palb(p) >= 0 .and. palb(p) <= 1)) call stop_at(p, 0, 'PALB = '//real_text(palb(p)) &
           //' is not in [0, 1]')
      if (.not. (psw_rad(p) >= 0 .and. psw_rad(p) <= big)) call stop_at(p, 0, 'PSW_RAD = '//real_text(psw_rad(p)) &
           //' W m-2 is not a finite value >= 0')
      if (.not. (abs(pzenith(p)) <= big)) call stop_at(p, 0, 'PZENITH = '//real_text(pzenith(p)) &
           //' rad is not finite')
      if (.not. (abs(pangl_illum(p)) <= big)) call stop_at(p, 0, 'PANGL_ILLUM = '//real_text(pangl_illum(p)) &
           //' rad is not finite')
      if (.not. (direct_sum(p) >= 0 .and. direct_sum(p) <= big)) call stop_at(p, 0, 'sum(P_DIR_SW) = ' &
           //real_text(direct_sum(p))//' W m-2 is not a finite value >= 0')
      if (.not. (diffuse_sum(p) >= 0 .and. diffuse_sum(p) <= big)) call stop_at(p, 0, 'sum(P_SCA_SW) = ' &
           //real_text(diffuse_sum(p))//' W m-2 is not a finite value >= 0')
      if (direct_sum(p) + diffuse_sum(p) == 0 .and. cos(pzenith(p)) > DAYLIGHT_MIN .and. &
          psw_rad(p) > DAYLIGHT_MIN) call stop_at(p, 0, 'P_DIR_SW and P_SCA_SW are all 0 while PSW_RAD = ' &
           //real_text(psw_rad(p))//' W m-2: no diffuse fraction')
      do l = 1, knlvls_use(p)
        shape_values = [psnowg0(p, l), psnowy0(p, l), psnoww0(p, l), psnowb0(p, l)]
        do j = 1, 4
          if (.not. (abs(shape_values(j) - CROCUS_SHAPE(j)) <= SHAPE_TOLERANCE*CROCUS_SHAPE(j))) &
               call stop_at(p, l, trim(SHAPE_NAMES(j))//' = '//real_text(shape_values(j))//', but the emulator ' &
               //'was trained with Crocus''s constant '//real_text(CROCUS_SHAPE(j))//' (PSNOWG0, PSNOWY0, ' &
               //'PSNOWW0, PSNOWB0 = 0.8961, 0.728, 0.0611, 1.225)')
        end do
        if (.not. (psnowdz(p, l) > 0 .and. psnowdz(p, l) <= big)) call stop_at(p, l, 'PSNOWDZ = ' &
             //real_text(psnowdz(p, l))//' m is not a finite value > 0')
        if (.not. (psnowrho(p, l) > 0 .and. psnowrho(p, l) <= ice_density_max)) call stop_at(p, l, 'PSNOWRHO = ' &
             //real_text(psnowrho(p, l))//' kg m-3 is not in (0, '//real_text(ice_density_max)//']')
        if (.not. (abs(psnowgran1(p, l)) <= big)) call stop_at(p, l, 'PSNOWGRAN1 = '//real_text(psnowgran1(p, l)) &
             //' is not finite')
        if (b92 .and. .not. (abs(psnowgran2(p, l)) <= big)) call stop_at(p, l, 'PSNOWGRAN2 = ' &
             //real_text(psnowgran2(p, l))//' is not finite')
        d = optical_diameter(b92, psnowgran1(p, l), psnowgran2(p, l))
        if (.not. (d > 0 .and. d <= big)) call stop_at(p, l, 'the optical diameter ' &
             //real_text(d)//' m (HSNOWMETAMO '//hsnowmetamo//', PSNOWGRAN1 = '//real_text(psnowgran1(p, l)) &
             //', PSNOWGRAN2 = '//real_text(psnowgran2(p, l))//') is not > 0')
        do j = 1, 2
          if (.not. (psnowimpur(p, l, j) >= 0 .and. psnowimpur(p, l, j) <= big)) call stop_at(p, l, &
               'PSNOWIMPUR(:, :, '//int_text(j)//') = '//real_text(psnowimpur(p, l, j)) &
               //' g m-2 is not a finite value >= 0')
        end do
      end do
    end do
    call stop_with('an invalid value that the message of each check missed')  ! the two passes disagree: a bug
  contains
    subroutine stop_with(problem)
      character(len=*), intent(in) :: problem
      call conclude(TARTES_EMULATOR_BAD_INPUT, routine//': '//problem)
    end subroutine stop_with
    subroutine stop_at(p, l, problem)
      integer, intent(in) :: p, l
      character(len=*), intent(in) :: problem
      if (l > 0) then
        call stop_with('point '//int_text(p)//', layer '//int_text(l)//': '//problem)
      else
        call stop_with('point '//int_text(p)//': '//problem)
      end if
    end subroutine stop_at
  end subroutine snowcro_check

  !> A point's scalars are valid for the drop-in (the conditions of snowcro_check's messages).
  elemental logical function snowcro_point_valid(knlvls_use, nl, palb, psw_rad, pzenith, pangl_illum, direct_sum, &
                                                 diffuse_sum) result(valid)
    integer, intent(in) :: knlvls_use, nl
    real(dp), intent(in) :: palb, psw_rad, pzenith, pangl_illum, direct_sum, diffuse_sum
    real(dp), parameter :: big = huge(1.0_dp)
    valid = knlvls_use >= 0 .and. knlvls_use <= min(nl, MAXL) .and. palb >= 0 .and. palb <= 1 .and. psw_rad >= 0 &
            .and. psw_rad <= big .and. abs(pzenith) <= big .and. abs(pangl_illum) <= big .and. direct_sum >= 0 &
            .and. direct_sum <= big .and. diffuse_sum >= 0 .and. diffuse_sum <= big
    if (valid) valid = direct_sum + diffuse_sum > 0 .or. .not. (cos(pzenith) > DAYLIGHT_MIN .and. &
                                                               psw_rad > DAYLIGHT_MIN)
  end function snowcro_point_valid

  !> A used layer is valid for the drop-in (the conditions of snowcro_check's messages).
  elemental logical function snowcro_layer_valid(b92, dz, rho, gran1, gran2, g0, y0, w0, b0, soot_load, dust_load) &
       result(valid)
    logical, intent(in) :: b92
    real(dp), intent(in) :: dz, rho, gran1, gran2, g0, y0, w0, b0, soot_load, dust_load
    real(dp), parameter :: big = huge(1.0_dp)
    real(dp) :: d
    d = optical_diameter(b92, gran1, gran2)
    valid = abs(g0 - CROCUS_SHAPE(1)) <= SHAPE_TOLERANCE*CROCUS_SHAPE(1) .and. &
            abs(y0 - CROCUS_SHAPE(2)) <= SHAPE_TOLERANCE*CROCUS_SHAPE(2) .and. &
            abs(w0 - CROCUS_SHAPE(3)) <= SHAPE_TOLERANCE*CROCUS_SHAPE(3) .and. &
            abs(b0 - CROCUS_SHAPE(4)) <= SHAPE_TOLERANCE*CROCUS_SHAPE(4) .and. dz > 0 .and. dz <= big .and. &
            rho > 0 .and. rho <= ice_density_max .and. abs(gran1) <= big .and. (abs(gran2) <= big .or. .not. b92) &
            .and. d > 0 .and. d <= big .and. soot_load >= 0 .and. soot_load <= big .and. dust_load >= 0 .and. &
            dust_load <= big
  end function snowcro_layer_valid

end module tartes_emulator
