// A narrow switch for one known compiler false positive, placed around the few lines that trigger it.
// GCC 12 at -O3 warns "__builtin_memcpy ... may overlap up to 9223372036854775813 bytes [-Wrestrict]"
// where it inlines std::operator+(const char*, std::string&&) (an insert at the front of a temporary
// string): GCC bugs 105329 and 105651. Only GCC has -Wrestrict; elsewhere the macros are empty.
// Use: MAILWARD_GCC_WRESTRICT_OFF  <the line>  MAILWARD_GCC_WRESTRICT_ON
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#define MAILWARD_GCC_WRESTRICT_OFF _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wrestrict\"")
#define MAILWARD_GCC_WRESTRICT_ON _Pragma("GCC diagnostic pop")
#else
#define MAILWARD_GCC_WRESTRICT_OFF
#define MAILWARD_GCC_WRESTRICT_ON
#endif
