# Writes a C file that holds a binary file as an array:
#   cmake -DINPUT=socklb.bpf.o -DOUTPUT=socklb_object.c -DSYMBOL=skiff_socklb_object -P embed.cmake
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n  " bytes "${bytes}")
file(WRITE ${OUTPUT}
  "/* Generated from ${INPUT} by socklb/embed.cmake. */\n"
  "const unsigned char ${SYMBOL}[] = {\n  ${bytes}\n};\n"
  "const unsigned long ${SYMBOL}_size = ${size};\n")
