# Placeholder: owner replaces with a STATIC library.
add_library(skiff_runtime_image INTERFACE)
target_include_directories(skiff_runtime_image INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/include)
target_link_libraries(skiff_runtime_image INTERFACE skiff_common)
