# cpp-httplib for turbine's server headers (include/turbine/serve/): the target turbine_httplib,
# and TURBINE_HAVE_HTTPLIB. httplib is optional: without it `turbine serve` and the HTTP tests are
# left out (the GPU machine has no httplib).
# A compiled libcpp-httplib (Debian's split build) must be used with the macros it was built with
# (CPPHTTPLIB_OPENSSL_SUPPORT and others change the size of httplib::Request): pkg-config gives
# them. Else an installed httplib CMake package, else the header alone (upstream's header-only
# httplib.h).
if(TARGET turbine_httplib)
  set(TURBINE_HAVE_HTTPLIB ON)
  return()
endif()
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(TURBINE_CPP_HTTPLIB QUIET IMPORTED_TARGET GLOBAL cpp-httplib)
  if(TURBINE_CPP_HTTPLIB_FOUND)
    add_library(turbine_httplib INTERFACE)
    target_link_libraries(turbine_httplib INTERFACE PkgConfig::TURBINE_CPP_HTTPLIB)
    set(TURBINE_HAVE_HTTPLIB ON)
    return()
  endif()
endif()
find_package(httplib CONFIG QUIET)
if(TARGET httplib::httplib)
  add_library(turbine_httplib INTERFACE)
  target_link_libraries(turbine_httplib INTERFACE httplib::httplib)
  set(TURBINE_HAVE_HTTPLIB ON)
  return()
endif()
find_path(TURBINE_HTTPLIB_INCLUDE_DIR httplib.h)
if(NOT TURBINE_HTTPLIB_INCLUDE_DIR)
  message(STATUS "cpp-httplib not found: `turbine serve` and the HTTP tests are left out (apt-get install libcpp-httplib-dev)")
  set(TURBINE_HAVE_HTTPLIB OFF)
  return()
endif()
set(TURBINE_HAVE_HTTPLIB ON)
add_library(turbine_httplib INTERFACE)
target_include_directories(turbine_httplib INTERFACE ${TURBINE_HTTPLIB_INCLUDE_DIR})
find_library(TURBINE_HTTPLIB_LIBRARY cpp-httplib)
if(TURBINE_HTTPLIB_LIBRARY)
  message(WARNING "found ${TURBINE_HTTPLIB_LIBRARY} but not its pkg-config file: linking it without the "
                  "macros it was built with may break httplib's classes (install pkg-config)")
  target_link_libraries(turbine_httplib INTERFACE ${TURBINE_HTTPLIB_LIBRARY})
endif()
