# Finds every dependency from Debian's packages; a missing one stops configure and names
# the package to install.
function(dpt_require var what pkg)
  if(NOT ${var})
    message(FATAL_ERROR "dptrain needs ${what}: install it with  apt-get install ${pkg}")
  endif()
endfunction()

# BLIS ships no pkg-config file on Debian.
find_path(BLIS_INCLUDE_DIR blis.h PATH_SUFFIXES blis)
find_library(BLIS_LIBRARY NAMES blis)
dpt_require(BLIS_INCLUDE_DIR "BLIS headers" libblis-dev)
dpt_require(BLIS_LIBRARY "the BLIS library" libblis-dev)

find_path(CSV_INCLUDE_DIR csv.h)
find_library(CSV_LIBRARY NAMES csv)
dpt_require(CSV_INCLUDE_DIR "libcsv headers" libcsv-dev)
dpt_require(CSV_LIBRARY "libcsv" libcsv-dev)

find_package(ZLIB)
dpt_require(ZLIB_FOUND "zlib" zlib1g-dev)
find_package(PNG)
dpt_require(PNG_FOUND "libpng (augmentation previews)" libpng-dev)
find_package(OpenSSL COMPONENTS Crypto)
dpt_require(OPENSSL_FOUND "OpenSSL libcrypto" libssl-dev)
find_package(OpenMP COMPONENTS C)
dpt_require(OpenMP_C_FOUND "OpenMP" "gcc (libgomp) or libomp-14-dev")

if(DPT_BUILD_TESTS)
  find_path(CRITERION_INCLUDE_DIR criterion/criterion.h)
  find_library(CRITERION_LIBRARY NAMES criterion)
  dpt_require(CRITERION_INCLUDE_DIR "Criterion headers" libcriterion-dev)
  dpt_require(CRITERION_LIBRARY "Criterion" libcriterion-dev)
endif()

# Open MPI for runs across processes (src/parallel/world.c, the only file that includes
# mpi.h). DPT_MPI=ON (the default, and what CI builds) requires it; OFF builds a dptrain that
# always runs as one process and refuses to start under a launcher.
if(DPT_MPI)
  find_package(MPI COMPONENTS C)
  dpt_require(MPI_C_FOUND "Open MPI" "libopenmpi-dev openmpi-bin")
  find_program(MPIEXEC_EXECUTABLE NAMES mpirun mpiexec)
  dpt_require(MPIEXEC_EXECUTABLE "mpirun" openmpi-bin)
endif()
