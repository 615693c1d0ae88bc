# Builds a consumer project from scratch and runs it (ctest tests consumers/*):
#   cmake -DMODE=find_package|add_subdirectory -DSOURCE_DIR=<turbine> -DWORK_DIR=<scratch>
#         -DCXX=<compiler> -DMODEL_DIR=<tiny model> -P run_consumer.cmake
# find_package: configures turbine alone (no tests, examples or CUDA), installs it to a prefix,
# checks the installed files, then builds tests/consumers/find_package against that prefix.
# add_subdirectory: builds tests/consumers/add_subdirectory, which adds the source tree.
# Either way the consumer must compile with no CUDA include path, and its program must pass.
foreach(v MODE SOURCE_DIR WORK_DIR CXX MODEL_DIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_consumer.cmake needs -D${v}=...")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_args -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DCMAKE_BUILD_TYPE=Release)
if(MODE STREQUAL "find_package")
  set(prefix ${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/turbine-build -DCMAKE_CXX_COMPILER=${CXX}
      -DCMAKE_INSTALL_PREFIX=${prefix} -DTURBINE_BUILD_TESTS=OFF -DTURBINE_BUILD_EXAMPLES=OFF
      -DTURBINE_BUILD_BENCH=OFF -DTURBINE_ENABLE_CUDA=OFF)
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/turbine-build)
  file(GLOB_RECURSE config_files ${prefix}/*/turbineConfig.cmake ${prefix}/*/turbineConfigVersion.cmake
       ${prefix}/*/turbineTargets.cmake)
  list(LENGTH config_files n)
  foreach(f include/turbine/turbine.hpp include/turbine/turbine.cuh include/turbine/instantiate.hpp)
    if(NOT EXISTS ${prefix}/${f})
      message(FATAL_ERROR "the install tree lacks ${f}")
    endif()
  endforeach()
  if(NOT n EQUAL 3)
    message(FATAL_ERROR "the install tree lacks turbineConfig/ConfigVersion/Targets.cmake (found: ${config_files})")
  endif()
  list(APPEND consumer_args -DCMAKE_PREFIX_PATH=${prefix})
else()
  list(APPEND consumer_args -DTURBINE_SOURCE_DIR=${SOURCE_DIR})
endif()

set(build ${WORK_DIR}/consumer-build)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumers/${MODE} -B ${build} ${consumer_args})
run(${CMAKE_COMMAND} --build ${build})
# No include directory on the command line may hold the CUDA toolkit's headers.
file(READ ${build}/compile_commands.json commands)
string(REGEX MATCHALL "(-I|-isystem )[^ \"]+" include_flags "${commands}")
foreach(flag IN LISTS include_flags)
  string(REGEX REPLACE "^(-I|-isystem )" "" dir "${flag}")
  if(EXISTS ${dir}/cuda_runtime.h)
    message(FATAL_ERROR "the CPU consumer was compiled with the CUDA toolkit on its include path: ${dir}")
  endif()
endforeach()
run(${build}/consumer ${MODEL_DIR})
