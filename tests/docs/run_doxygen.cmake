# ctest docs/doxygen: runs Doxygen over the Doxyfile at the repository root, writing into the
# build tree, and fails on any warning (an undocumented public name, a broken reference).
#   cmake -DDOXYGEN=<doxygen> -DSOURCE_DIR=<turbine> -DWORK_DIR=<scratch> -P run_doxygen.cmake
file(MAKE_DIRECTORY ${WORK_DIR})
file(WRITE ${WORK_DIR}/Doxyfile "@INCLUDE = ${SOURCE_DIR}/Doxyfile\nOUTPUT_DIRECTORY = ${WORK_DIR}\nQUIET = YES\n")
execute_process(COMMAND ${DOXYGEN} ${WORK_DIR}/Doxyfile WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT err STREQUAL "")
  message(FATAL_ERROR "doxygen failed (exit ${rc}):\n${err}")
endif()
message(STATUS "doxygen: no warnings; HTML in ${WORK_DIR}/html")
