# The serving tests (included from tests/CMakeLists.txt after the per-file test targets exist):
# the HTTP tests link cpp-httplib; the OpenAI Python client test runs `turbine serve` itself.
include(${PROJECT_SOURCE_DIR}/cmake/httplib.cmake)
foreach(target test_serve_http_server test_serve_load)
  if(TARGET ${target})
    target_link_libraries(${target} PRIVATE turbine_httplib)
  endif()
endforeach()
if(TARGET test_serve_load)
  set_tests_properties(serve/load PROPERTIES TIMEOUT 900 ENVIRONMENT "TURBINE_LOAD_CLIENTS=48")
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

# The HTTP server's tests again under AddressSanitizer and UndefinedBehaviorSanitizer (GCC or
# Clang), as their own test binary in the same build: malformed requests, streams, disconnects and
# several clients at once. (The load test ran under them too until 2026-12-06: 75 s more of a CI
# run that must stay under 30 minutes, for concurrency the HTTP tests' clients already exercise.)
# Line tables only (-g1): two thirds of the compile time of -g, which made this the slowest file of
# the build (-O1 halved it but ran 45% longer). Any report fails the test (halt_on_error, UBSan
# errors are fatal).
if(TURBINE_HAVE_HTTPLIB AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang" AND NOT TURBINE_NO_SANITIZER_TESTS)
  set(target test_serve_http_server_asan)
  add_executable(${target} ${CMAKE_CURRENT_SOURCE_DIR}/serve/http_server.cpp ${CMAKE_CURRENT_SOURCE_DIR}/test_main.cpp)
  target_include_directories(${target} PRIVATE ${DOCTEST_INCLUDE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_definitions(${target} PRIVATE TURBINE_TEST_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data")
  target_link_libraries(${target} PRIVATE turbine::turbine turbine_project_options turbine_httplib)
  target_compile_options(${target} PRIVATE -O2 -g1 -fsanitize=address,undefined -fno-omit-frame-pointer
                                           -fno-sanitize-recover=undefined -Wno-uninitialized)  # GCC 12 avx512 intrinsics under ASan
  target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  add_test(NAME serve/http_server_asan COMMAND ${target})
  set_tests_properties(serve/http_server_asan PROPERTIES TIMEOUT 900 SKIP_REGULAR_EXPRESSION "\\[skipped\\]"
                       ENVIRONMENT "ASAN_OPTIONS=halt_on_error=1:detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1")
endif()
