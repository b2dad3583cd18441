# Configures, builds and runs tests/consumer as a separate CMake project using cct.
#   MODE=subdirectory: the consumer adds the cct source tree with add_subdirectory.
#   MODE=package:      cct's build tree is installed into WORK_DIR/prefix first; the consumer finds it
#                      with find_package(cct) through CMAKE_PREFIX_PATH (and nowhere else).
# Run by ctest as `cmake -DMODE=... -DCCT_SOURCE_DIR=... -DCCT_BINARY_DIR=... -DWORK_DIR=... -P`.
foreach(required MODE CCT_SOURCE_DIR CCT_BINARY_DIR WORK_DIR)
  if(NOT DEFINED ${required})
    message(FATAL_ERROR "run_consumer.cmake: -D${required}=... is required")
  endif()
endforeach()

function(run_step description)
  message("-- ${description}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer test (${MODE}): ${description} failed (${result})")
  endif()
endfunction()

# Fresh every time: a stale cache or a stale install could hide a broken package.
file(REMOVE_RECURSE ${WORK_DIR})
set(build_dir ${WORK_DIR}/build)
set(configure_args -S ${CCT_SOURCE_DIR}/tests/consumer -B ${build_dir})
if(GENERATOR)
  list(APPEND configure_args -G ${GENERATOR})
endif()
if(CXX)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CXX})
endif()
if(LAUNCHER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()
list(APPEND configure_args -DCMAKE_BUILD_TYPE=${BUILD_TYPE})

if(MODE STREQUAL "subdirectory")
  list(APPEND configure_args -DCCT_SOURCE_DIR=${CCT_SOURCE_DIR})
elseif(MODE STREQUAL "package")
  set(prefix ${WORK_DIR}/prefix)
  run_step("install cct" ${CMAKE_COMMAND} --install ${CCT_BINARY_DIR} --prefix ${prefix} --component cct
           --config ${BUILD_TYPE})
  # The installed package also carries the compiled mode (built by cct's own build): its programs use it
  # here (header-only is what the subdirectory build tests), which also keeps this test's compiles short;
  # in the subdirectory build it would compile the library again. cct_consumer is then compiled_main.cpp,
  # which fails to compile without CCT_COMPILED and to link without libcct_compiled.a.
  list(APPEND configure_args -DCCT_CONSUMER_COMPILED=ON)
  list(APPEND configure_args -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
       -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
else()
  message(FATAL_ERROR "run_consumer.cmake: MODE must be subdirectory or package, not '${MODE}'")
endif()

run_step("configure" ${CMAKE_COMMAND} ${configure_args})
if(MODE STREQUAL "package")
  # The package must come from the fresh install, not from some other cct on the system.
  file(STRINGS ${build_dir}/CMakeCache.txt cct_dir_line REGEX "^cct_DIR:")
  string(REGEX REPLACE "^cct_DIR:[A-Z]+=" "" found_dir "${cct_dir_line}")
  file(REAL_PATH "${found_dir}" found_dir)
  file(REAL_PATH "${prefix}" real_prefix)
  string(FIND "${found_dir}" "${real_prefix}/" position)
  if(NOT position EQUAL 0)
    message(FATAL_ERROR "consumer test (package): find_package(cct) used '${found_dir}', not the install in ${prefix}")
  endif()
endif()
run_step("build" ${CMAKE_COMMAND} --build ${build_dir} --config ${BUILD_TYPE})

find_program(consumer_exe cct_consumer PATHS ${build_dir} ${build_dir}/${BUILD_TYPE} NO_DEFAULT_PATH)
if(NOT consumer_exe)
  message(FATAL_ERROR "consumer test (${MODE}): the built cct_consumer executable was not found under ${build_dir}")
endif()
run_step("run" ${consumer_exe})
message("consumer test (${MODE}): passed")
