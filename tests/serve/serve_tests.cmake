# The serving tests (included from tests/CMakeLists.txt after the per-file test targets exist):
# the HTTP tests link cpp-httplib; the OpenAI Python client test runs `turbine serve` itself.
include(${PROJECT_SOURCE_DIR}/cmake/httplib.cmake)
foreach(target test_serve_http_server test_serve_load)
  if(TARGET ${target})
    target_link_libraries(${target} PRIVATE turbine_httplib)
  endif()
endforeach()
if(TARGET test_serve_load)
  set_tests_properties(serve/load PROPERTIES TIMEOUT 900)
endif()
if(TURBINE_BUILD_EXAMPLES AND NOT TURBINE_HAVE_HTTPLIB)
  add_test(NAME serve/openai_client COMMAND ${CMAKE_COMMAND} -E echo "[skipped] built without cpp-httplib: no turbine serve")
  set_tests_properties(serve/openai_client PROPERTIES SKIP_REGULAR_EXPRESSION "\\[skipped\\]")
elseif(TURBINE_BUILD_EXAMPLES)
  # `python3` as found on PATH when the test runs: the interpreter tools/install_deps.sh put openai into.
  add_test(NAME serve/openai_client
           COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/serve/openai_client_test.py $<TARGET_FILE:turbine_cli>
                   "${TURBINE_MODEL_DIR}/SmolLM2-135M-Instruct.Q4_1.gguf")
  set_tests_properties(serve/openai_client PROPERTIES SKIP_REGULAR_EXPRESSION "\\[skipped\\]" TIMEOUT 900)
endif()
