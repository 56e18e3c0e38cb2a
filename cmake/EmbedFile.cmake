# cmake -DINPUT=file -DOUTPUT=file.cc -DSYMBOL=name -P EmbedFile.cmake
# Writes a C++ source defining `std::string_view tracemark::embedded::SYMBOL()` that returns the
# bytes of INPUT, so that data the libraries need (the canary lexicon and suite) is compiled in
# and nothing is read from the source tree at run time.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
# Break the initialiser into lines of 16 bytes so compilers and editors stay happy.
string(REGEX REPLACE "(('[^']*',){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp" "// Generated from ${INPUT} by cmake/EmbedFile.cmake; do not edit.\n"
  "#include <string_view>\n"
  "namespace tracemark::embedded {\n"
  "namespace {\nconstexpr char kData[] = {\n${bytes}'\\0'};\n}  // namespace\n"
  "std::string_view ${SYMBOL}() { return std::string_view(kData, ${size}); }\n"
  "}  // namespace tracemark::embedded\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
