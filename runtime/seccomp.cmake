# skiff_runtime_seccomp: seccomp profiles in Docker's JSON format -> the
# rules to load (pure: nlohmann::json, no kernel, no libseccomp), plus
# Docker's default profile compiled in. Loading the rules into the kernel
# (libseccomp) lives in skiff_runtime_container (src/seccomp_load.cc).
set(_skiff_seccomp_dir ${CMAKE_CURRENT_LIST_DIR})
# The profile becomes a string constant in a generated header, so the build
# and the binary never read a profile from the host at run time.
file(READ ${_skiff_seccomp_dir}/seccomp/default.json SKIFF_SECCOMP_DEFAULT_JSON)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${_skiff_seccomp_dir}/seccomp/default.json)
configure_file(${_skiff_seccomp_dir}/seccomp/default_profile.h.in
  ${CMAKE_CURRENT_BINARY_DIR}/generated/skiff_default_seccomp_profile.h @ONLY)

add_library(skiff_runtime_seccomp STATIC ${_skiff_seccomp_dir}/src/seccomp_profile.cc)
target_include_directories(skiff_runtime_seccomp
  PUBLIC ${_skiff_seccomp_dir}/include
  PRIVATE ${CMAKE_CURRENT_BINARY_DIR}/generated)
target_link_libraries(skiff_runtime_seccomp PUBLIC skiff_common nlohmann_json::nlohmann_json)
