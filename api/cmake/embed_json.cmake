# Build step: embed a JSON document into C as a NUL-terminated char array.
# Usage: cmake -DINPUT=doc.json -DOUTPUT=doc.c -DSYMBOL=name -P embed_json.cmake
# The document is parsed first (string(JSON)), so a broken file fails the build.
file(READ "${INPUT}" text)
string(JSON kind ERROR_VARIABLE json_error TYPE "${text}")
if(json_error)
  message(FATAL_ERROR "${INPUT} is not valid JSON: ${json_error}")
endif()
if(NOT kind STREQUAL "OBJECT")
  message(FATAL_ERROR "${INPUT}: expected a JSON object, found ${kind}")
endif()

# Hex bytes rather than a string literal: no escaping rules, no literal length limits.
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n    "
       bytes "${bytes}")
get_filename_component(input_name "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp"
"/* Generated from ${input_name} by api/cmake/embed_json.cmake at build time; do not edit. */
extern const char ${SYMBOL}[];
const char ${SYMBOL}[] = {
    ${bytes}0x00
};
")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
