!> A driver of tartes_emulator_snowcro_tartes, the drop-in for Crocus, for tests/test_fortran.py and
!> benchmarks/inference.py: it calls the drop-in as snowcro.F90 calls SNOWCRO_TARTES, on sections of
!> the points of an input file.
!>
!>     snowcro_driver INPUT OUTPUT HSNOWMETAMO BATCHES [load=WEIGHTS] [fallback] [oatmorad] [debug]
!>                    [threads] [time=REPEATS]
!>
!> INPUT is a raw little-endian stream (access='stream'): four int32, P, NL, NB and NIMPUR, then
!> in Fortran order float64 PSNOWGRAN1, PSNOWGRAN2, PSNOWRHO, PSNOWDZ, PSNOWG0, PSNOWY0, PSNOWW0,
!> PSNOWB0 (P, NL), PSNOWIMPUR (P, NL, NIMPUR), PALB, PSW_RAD, PZENITH, PANGL_ILLUM, PDIRCOSZW (P),
!> int32 KNLVLS_USE (P), float64 P_DIR_SW, P_SCA_SW (P, NB).
!> OUTPUT receives float64 PSNOWALB (P), PRADSINK (P, NL), PRADXS (P), PSNOWALB_SP, PSPEC_DIR,
!> PSPEC_DIF (P, NB) and PSNOWALB_FB (P) (passed on every other call: both forms are exercised).
!>
!> BATCHES: the numbers of points of the successive calls, comma-separated, cycled (32,64,48:
!> calls on points 1-32, 33-96, 97-144, 145-176, ...). load=WEIGHTS: tartes_emulator_load first;
!> without it the drop-in loads the file of TARTES_EMULATOR_WEIGHTS at its first call. fallback:
!> registers stand_in (below) for the points outside the emulator's domain. oatmorad, debug: OATMORAD
!> and ODEBUG true. threads: the calls in an OpenMP parallel loop (with -fopenmp: the first call,
!> and so the load, from several threads at once). time=REPEATS: the best of REPEATS passes over
!> all the points, printed as "snowcro_seconds S". It prints "outside_count N" (the module's
!> count) and "fallback_points N" (the points the stand-in was given).
module snowcro_stand_in
  implicit none
  integer :: stand_in_points = 0
contains
  !> A stand-in for SNOWCRO_TARTES with its interface: values that show which rows it was given
  !> (PSNOWALB = PALB, PRADXS = PSW_RAD, PRADSINK(:, l) = -PSNOWDZ(:, l) in the used layers).
  subroutine stand_in(psnowgran1, psnowgran2, psnowrho, psnowdz, psnowg0, psnowy0, psnoww0, psnowb0, psnowimpur, &
                      palb, psw_rad, pzenith, pangl_illum, pdircoszw, knlvls_use, psnowalb, pradsink, pradxs, odebug, &
                      hsnowmetamo, p_dir_sw, p_sca_sw, psnowalb_sp, pspec_dir, pspec_dif, oatmorad, psnowalb_fb)
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
    integer :: p, l
    !$omp atomic update
    stand_in_points = stand_in_points + size(palb)
    psnowalb = palb
    pradxs = psw_rad
    pradsink = 0
    do p = 1, size(palb)
      do l = 1, knlvls_use(p)
        pradsink(p, l) = -psnowdz(p, l)
      end do
    end do
    psnowalb_sp = 0.5d0
    pspec_dir = 7
    pspec_dif = 8
    if (present(psnowalb_fb)) psnowalb_fb = 0.125d0
  end subroutine stand_in
end module snowcro_stand_in

program snowcro_driver
  use, intrinsic :: iso_fortran_env, only: int32, real64, error_unit
  use tartes_emulator
  use snowcro_stand_in
  implicit none
  character(len=4096) :: input, output, text
  character(len=3) :: metamo
  integer(int32) :: npts, nl, nb, nimpur
  integer(int32), allocatable :: knlvls_use(:)
  integer, allocatable :: sizes(:), starts(:)
  integer :: u, i, j, k, n_calls, repeats, pass
  integer(kind=8) :: start, finish, rate
  logical :: oatmorad, debug, threads
  real(real64) :: best
  real(real64), allocatable, dimension(:, :) :: gran1, gran2, rho, dz, g0, y0, w0, b0, dir_sw, sca_sw
  real(real64), allocatable :: impur(:, :, :)
  real(real64), allocatable, dimension(:) :: palb, sw_rad, zenith, angl_illum, dircoszw, snowalb, radxs, snowalb_fb
  real(real64), allocatable, dimension(:, :) :: radsink, snowalb_sp, spec_dir, spec_dif

  if (command_argument_count() < 4) then
    write(error_unit, '(a)') 'usage: snowcro_driver INPUT OUTPUT HSNOWMETAMO BATCHES [load=WEIGHTS] [fallback] ' &
                             //'[oatmorad] [debug] [threads] [time=REPEATS]'
    error stop 2
  end if
  call get_command_argument(1, input)
  call get_command_argument(2, output)
  call get_command_argument(3, text)
  metamo = text(1:3)
  call get_command_argument(4, text)
  allocate(sizes(count([(text(i:i) == ',', i = 1, len_trim(text))]) + 1))
  read(text, *) sizes
  oatmorad = .false.
  debug = .false.
  threads = .false.
  repeats = 0
  do i = 5, command_argument_count()
    call get_command_argument(i, text)
    if (text(1:5) == 'load=') then
      call tartes_emulator_load(trim(text(6:)))
    else if (text == 'fallback') then
      call tartes_emulator_register_fallback(stand_in)
    else if (text == 'oatmorad') then
      oatmorad = .true.
    else if (text == 'debug') then
      debug = .true.
    else if (text == 'threads') then
      threads = .true.
    else if (text(1:5) == 'time=') then
      read(text(6:), *) repeats
    else
      write(error_unit, '(a)') 'snowcro_driver: unknown option '//trim(text)
      error stop 2
    end if
  end do

  open(newunit=u, file=trim(input), access='stream', form='unformatted', status='old', action='read')
  read(u) npts, nl, nb, nimpur
  allocate(gran1(npts, nl), gran2(npts, nl), rho(npts, nl), dz(npts, nl), g0(npts, nl), y0(npts, nl), &
           w0(npts, nl), b0(npts, nl), impur(npts, nl, nimpur), palb(npts), sw_rad(npts), zenith(npts), &
           angl_illum(npts), dircoszw(npts), knlvls_use(npts), dir_sw(npts, nb), sca_sw(npts, nb))
  read(u) gran1, gran2, rho, dz, g0, y0, w0, b0, impur, palb, sw_rad, zenith, angl_illum, dircoszw, knlvls_use, &
          dir_sw, sca_sw
  close(u)
  allocate(snowalb(npts), radsink(npts, nl), radxs(npts), snowalb_sp(npts, nb), spec_dir(npts, nb), &
           spec_dif(npts, nb), snowalb_fb(npts))
  snowalb_fb = -1  ! PSNOWALB_FB is written only on the calls that pass it

  ! the calls: consecutive sections of the cycled sizes
  allocate(starts(npts + 1))
  n_calls = 0
  i = 1
  do while (i <= npts)
    n_calls = n_calls + 1
    starts(n_calls) = i
    i = i + sizes(mod(n_calls - 1, size(sizes)) + 1)
  end do
  starts(n_calls + 1) = npts + 1

  if (repeats > 0) then
    call system_clock(count_rate=rate)
    call all_calls()  ! untimed: loads the weights, warms the caches
    best = huge(1.0_real64)
    do pass = 1, repeats
      call system_clock(start)
      call all_calls()
      call system_clock(finish)
      best = min(best, real(finish - start, real64)/real(rate, real64))
    end do
    print '(a, i0, a, i0)', 'points ', npts, ' calls ', n_calls
    print '(a, es16.8)', 'snowcro_seconds ', best
  else
    call all_calls()
  end if
  print '(a, i0)', 'outside_count ', tartes_emulator_outside_count()
  print '(a, i0)', 'fallback_points ', stand_in_points
  open(newunit=u, file=trim(output), access='stream', form='unformatted', status='replace', action='write')
  write(u) snowalb, radsink, radxs, snowalb_sp, spec_dir, spec_dif, snowalb_fb
  close(u)
contains

  subroutine all_calls()
    if (threads) then
      !$omp parallel do private(j, k) schedule(dynamic)
      do i = 1, n_calls
        j = starts(i)
        k = starts(i + 1) - 1
        call one_call(j, k, mod(i, 2) == 0)
      end do
      !$omp end parallel do
    else
      do i = 1, n_calls
        call one_call(starts(i), starts(i + 1) - 1, mod(i, 2) == 0)
      end do
    end if
  end subroutine all_calls

  !> Points p0..p1, as snowcro.F90 passes its arrays (sections); PSNOWALB_FB passed or not.
  subroutine one_call(p0, p1, with_fb)
    integer, intent(in) :: p0, p1
    logical, intent(in) :: with_fb
    if (with_fb) then
      call tartes_emulator_snowcro_tartes(gran1(p0:p1, :), gran2(p0:p1, :), rho(p0:p1, :), dz(p0:p1, :), &
           g0(p0:p1, :), y0(p0:p1, :), w0(p0:p1, :), b0(p0:p1, :), impur(p0:p1, :, :), palb(p0:p1), sw_rad(p0:p1), &
           zenith(p0:p1), angl_illum(p0:p1), dircoszw(p0:p1), knlvls_use(p0:p1), snowalb(p0:p1), &
           radsink(p0:p1, :), radxs(p0:p1), debug, metamo, dir_sw(p0:p1, :), sca_sw(p0:p1, :), &
           snowalb_sp(p0:p1, :), spec_dir(p0:p1, :), spec_dif(p0:p1, :), oatmorad, snowalb_fb(p0:p1))
    else
      call tartes_emulator_snowcro_tartes(gran1(p0:p1, :), gran2(p0:p1, :), rho(p0:p1, :), dz(p0:p1, :), &
           g0(p0:p1, :), y0(p0:p1, :), w0(p0:p1, :), b0(p0:p1, :), impur(p0:p1, :, :), palb(p0:p1), sw_rad(p0:p1), &
           zenith(p0:p1), angl_illum(p0:p1), dircoszw(p0:p1), knlvls_use(p0:p1), snowalb(p0:p1), &
           radsink(p0:p1, :), radxs(p0:p1), debug, metamo, dir_sw(p0:p1, :), sca_sw(p0:p1, :), &
           snowalb_sp(p0:p1, :), spec_dir(p0:p1, :), spec_dif(p0:p1, :), oatmorad)
    end if
  end subroutine one_call
end program snowcro_driver
