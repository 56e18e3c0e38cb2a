# Helpers that keep each module's CMakeLists.txt declarative.

add_library(tracemark_warnings INTERFACE)
target_compile_options(tracemark_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX,C>:-Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wconversion -Wno-sign-conversion>
  $<$<AND:$<BOOL:${TRACEMARK_WERROR}>,$<COMPILE_LANGUAGE:CXX,C>>:-Werror>
  $<$<AND:$<BOOL:${TRACEMARK_WERROR}>,$<COMPILE_LANGUAGE:CUDA>>:-Werror=all-warnings>)

if(TRACEMARK_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TRACEMARK_FUZZ needs clang: -DCMAKE_CXX_COMPILER=clang++-14 "
      "-DCMAKE_C_COMPILER=clang-14")
  endif()
  # Coverage for libFuzzer in every library, and AddressSanitizer (with UBSan) to catch what a
  # crash would not show.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(TRACEMARK_SANITIZE)
  add_compile_options(-fsanitize=${TRACEMARK_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${TRACEMARK_SANITIZE})
endif()

# tracemark_module(NAME SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
# Defines library tracemark_NAME (alias tracemark::NAME) whose public headers live in
# include/tracemark/NAME/ beside the calling CMakeLists.txt, and installs both.
function(tracemark_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(tracemark_${name} STATIC ${M_SOURCES})
  add_library(tracemark::${name} ALIAS tracemark_${name})
  target_include_directories(tracemark_${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(tracemark_${name} PUBLIC ${M_DEPS}
    PRIVATE ${M_PRIVATE_DEPS} $<BUILD_INTERFACE:tracemark_warnings>)
  set_target_properties(tracemark_${name} PROPERTIES EXPORT_NAME ${name})
  set(component ${TRACEMARK_COMPONENT_OF_${name}})
  if(NOT component)
    message(FATAL_ERROR "module ${name} is in no package component (root CMakeLists.txt)")
  endif()
  install(TARGETS tracemark_${name} EXPORT tracemark-${component}-targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()

# tracemark_test(NAME SOURCES ... DEPS ...): a GoogleTest binary registered with CTest.
function(tracemark_test name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main tracemark_warnings)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)  # testing/*.h
  target_compile_definitions(${name} PRIVATE
    TRACEMARK_SOURCE_DIR="${PROJECT_SOURCE_DIR}" TRACEMARK_DATA_DIR="${PROJECT_SOURCE_DIR}/data")
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${T_LABELS}")
endfunction()

# tracemark_test_properties(NAME LABEL SECONDS [PROPERTY VALUE ...]): a script test's label and
# time limit, and any further properties; a sanitizer build gets ten times the time (its code runs
# many times slower).
function(tracemark_test_properties name label seconds)
  if(TRACEMARK_SANITIZE)
    math(EXPR seconds "${seconds} * 10")
  endif()
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT ${seconds} ${ARGN})
endfunction()

# tracemark_embed(TARGET SYMBOL FILE): compiles FILE's bytes into TARGET as
# std::string_view tracemark::embedded::SYMBOL() (declare it where it is used).
function(tracemark_embed target symbol file)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded_${symbol}.cc)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DINPUT=${file} -DOUTPUT=${out} -DSYMBOL=${symbol}
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake
    DEPENDS ${file} ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake
    COMMENT "Embedding ${file}" VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()
