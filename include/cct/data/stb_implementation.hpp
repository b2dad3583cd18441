// stb_image's and stb_image_write's implementation, compiled once per program. With CMake nothing is
// to be done: cct::cct links a small static library (cct_image_codecs) built from this header. Without
// CMake, include it in exactly one .cpp of the program (a second copy fails to link with duplicate
// stbi_* symbols). A program that already compiles stb_image's implementation itself keeps its own and
// leaves this header out: cct needs only stbi_load_from_memory, stbi_info_from_memory,
// stbi_failure_reason, stbi_image_free and stbi_write_png_to_func.
#pragma once

#if !__has_include(<stb/stb_image.h>) || !__has_include(<stb/stb_image_write.h>)
#error "cct/data/stb_implementation.hpp needs stb's headers: apt-get install libstb-dev (scripts/install_deps.sh does)"
#endif
#include "stb_config.hpp"

// Decoders for the formats image folders hold.
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
// stb's asserts are consistency checks that corrupt files can trip (a JPEG whose Huffman codes do not
// match their lengths, found by fuzzing): with NDEBUG they vanish and stb goes on bounds-checked, but a
// debug build would abort. cct refuses or decodes such a file the same way in every build.
#define STBI_ASSERT(x) ((void)0)

#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#undef STB_IMAGE_IMPLEMENTATION

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#undef STB_IMAGE_WRITE_IMPLEMENTATION
