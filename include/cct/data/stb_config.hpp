// The stb settings that change stb_image's and stb_image_write's declarations, which image_io.hpp (the
// declarations) and stb_implementation.hpp (the code, compiled once) must agree on: memory only, as
// cct reads and writes the files itself.
#pragma once

#ifndef STBI_NO_STDIO
#define STBI_NO_STDIO
#endif
#ifndef STBI_WRITE_NO_STDIO
#define STBI_WRITE_NO_STDIO
#endif
