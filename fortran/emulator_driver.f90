!> A driver of the tartes_emulator module for tests/test_fortran.py and benchmarks/inference.py.
!>
!>     emulator_driver WEIGHTS INPUT OUTPUT [check | unkeyed | stop | time REPEATS [BATCH]]
!>
!> INPUT is a raw little-endian stream (access='stream'): two int32, npts and nlayers, then float64
!> arrays in Fortran order: dz, ssa, density, soot, dust (npts, nlayers), cos_illum, direct_sw,
!> diffuse_sw, soil_albedo, cos_zenith (npts; cos_zenith NaN where not known).
!>
!> check (the default): calls every routine with the status argument and the keywords soil_albedo
!> and cos_zenith, and prints "status N" and the message of each call; OUTPUT receives float64
!> albedo, soil (npts), absorbed (npts, nlayers), psnowalb, pradxs (npts), pradsink (npts,
!> nlayers) and outside (npts, 1 or 0).
!> unkeyed: the same calls as written before the keywords existed (soil_albedo and cos_zenith of
!> INPUT are not passed): the module's defaults, a soil albedo of 0.2 and no cos_zenith.
!> stop: calls tartes_emulator_budget without status (a fault stops the program).
!> time REPEATS [BATCH]: the best of REPEATS passes over all the points of tartes_emulator_budget
!> and of tartes_emulator_crocus, called on BATCH points at a time (default: all of them at once),
!> printed as seconds of wall-clock time (and the budget's CPU time, of all threads); OUTPUT
!> receives albedo, soil and absorbed as in check.
program emulator_driver
  use, intrinsic :: iso_fortran_env, only: int32, real64, error_unit
  use tartes_emulator
  implicit none
  character(len=4096) :: weights, input, output, mode, text
  integer(int32) :: npts, nl
  integer :: u, repeats, i, status, batch, p0, p1
  integer(kind=8) :: start, finish, rate
  real(real64) :: best_budget, best_crocus, cpu_start, cpu_finish, best_cpu
  real(real64), allocatable :: dz(:, :), ssa(:, :), density(:, :), soot(:, :), dust(:, :)
  real(real64), allocatable :: cos_illum(:), direct_sw(:), diffuse_sw(:), soil_albedo(:), cos_zenith(:)
  real(real64), allocatable :: albedo(:), absorbed(:, :), soil(:), psnowalb(:), pradsink(:, :), pradxs(:)
  logical, allocatable :: outside(:)
  character(len=512) :: message

  if (command_argument_count() < 3) then
    write(error_unit, '(a)') 'usage: emulator_driver WEIGHTS INPUT OUTPUT [check | unkeyed | stop | time REPEATS [BATCH]]'
    error stop 2
  end if
  call get_command_argument(1, weights)
  call get_command_argument(2, input)
  call get_command_argument(3, output)
  mode = 'check'
  if (command_argument_count() >= 4) call get_command_argument(4, mode)

  call tartes_emulator_load(trim(weights))

  open(newunit=u, file=trim(input), access='stream', form='unformatted', status='old', action='read')
  read(u) npts, nl
  allocate(dz(npts, nl), ssa(npts, nl), density(npts, nl), soot(npts, nl), dust(npts, nl))
  allocate(cos_illum(npts), direct_sw(npts), diffuse_sw(npts), soil_albedo(npts), cos_zenith(npts))
  read(u) dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith
  close(u)
  allocate(albedo(npts), absorbed(npts, nl), soil(npts), psnowalb(npts), pradsink(npts, nl), pradxs(npts))
  allocate(outside(npts))

  select case (trim(mode))
  case ('check')
    call tartes_emulator_budget(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                albedo, absorbed, soil, status, message, soil_albedo=soil_albedo, &
                                cos_zenith=cos_zenith)
    print '(a, i0, a, a)', 'budget status ', status, ' ', trim(message)
    call tartes_emulator_crocus(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                psnowalb, pradsink, pradxs, status, message, soil_albedo=soil_albedo, &
                                cos_zenith=cos_zenith)
    print '(a, i0, a, a)', 'crocus status ', status, ' ', trim(message)
    call tartes_emulator_outside_domain(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                        outside, status, message, soil_albedo=soil_albedo, cos_zenith=cos_zenith)
    print '(a, i0, a, a)', 'outside status ', status, ' ', trim(message)
    call write_outputs()
  case ('unkeyed')
    call tartes_emulator_budget(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                albedo, absorbed, soil, status, message)
    print '(a, i0, a, a)', 'budget status ', status, ' ', trim(message)
    call tartes_emulator_crocus(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                psnowalb, pradsink, pradxs, status, message)
    print '(a, i0, a, a)', 'crocus status ', status, ' ', trim(message)
    call tartes_emulator_outside_domain(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                        outside, status, message)
    print '(a, i0, a, a)', 'outside status ', status, ' ', trim(message)
    call write_outputs()
  case ('stop')
    call tartes_emulator_budget(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, &
                                albedo, absorbed, soil, soil_albedo=soil_albedo, cos_zenith=cos_zenith)
    print '(a)', 'budget done'
  case ('time')
    repeats = 5
    if (command_argument_count() >= 5) then
      call get_command_argument(5, text)
      read(text, *) repeats
    end if
    batch = npts
    if (command_argument_count() >= 6) then
      call get_command_argument(6, text)
      read(text, *) batch
    end if
    call system_clock(count_rate=rate)
    ! one untimed pass, then the best of `repeats`
    call budget_pass()
    best_budget = huge(1.0_real64)
    best_crocus = huge(1.0_real64)
    best_cpu = huge(1.0_real64)
    do i = 1, repeats
      call system_clock(start)
      call cpu_time(cpu_start)
      call budget_pass()
      call cpu_time(cpu_finish)
      call system_clock(finish)
      best_budget = min(best_budget, real(finish - start, real64)/real(rate, real64))
      best_cpu = min(best_cpu, cpu_finish - cpu_start)
      call system_clock(start)
      do p0 = 1, npts, batch
        p1 = min(p0 + batch - 1, npts)
        call tartes_emulator_crocus(dz(p0:p1, :), ssa(p0:p1, :), density(p0:p1, :), soot(p0:p1, :), &
                                    dust(p0:p1, :), cos_illum(p0:p1), direct_sw(p0:p1), diffuse_sw(p0:p1), &
                                    psnowalb(p0:p1), pradsink(p0:p1, :), pradxs(p0:p1), &
                                    soil_albedo=soil_albedo(p0:p1), cos_zenith=cos_zenith(p0:p1))
      end do
      call system_clock(finish)
      best_crocus = min(best_crocus, real(finish - start, real64)/real(rate, real64))
    end do
    print '(a, i0, a, i0)', 'points ', npts, ' batch ', batch
    print '(a, es16.8)', 'budget_seconds ', best_budget
    print '(a, es16.8)', 'budget_cpu_seconds ', best_cpu
    print '(a, es16.8)', 'crocus_seconds ', best_crocus
    open(newunit=u, file=trim(output), access='stream', form='unformatted', status='replace', action='write')
    write(u) albedo, soil, absorbed
    close(u)
  case default
    write(error_unit, '(a)') 'emulator_driver: unknown mode '//trim(mode)//' (check, unkeyed, stop or time)'
    error stop 2
  end select
contains

  subroutine write_outputs()
    open(newunit=u, file=trim(output), access='stream', form='unformatted', status='replace', action='write')
    write(u) albedo, soil, absorbed, psnowalb, pradxs, pradsink, merge(1.0_real64, 0.0_real64, outside)
    close(u)
  end subroutine write_outputs

  subroutine budget_pass()
    do p0 = 1, npts, batch
      p1 = min(p0 + batch - 1, npts)
      call tartes_emulator_budget(dz(p0:p1, :), ssa(p0:p1, :), density(p0:p1, :), soot(p0:p1, :), dust(p0:p1, :), &
                                  cos_illum(p0:p1), direct_sw(p0:p1), diffuse_sw(p0:p1), albedo(p0:p1), &
                                  absorbed(p0:p1, :), soil(p0:p1), soil_albedo=soil_albedo(p0:p1), &
                                  cos_zenith=cos_zenith(p0:p1))
    end do
  end subroutine budget_pass
end program emulator_driver
