// Small file helpers: read a whole file, write one atomically (temp file, fsync, rename, fsync of
// the directory) with given permissions, and make a directory tree. Used for data_dir, keys and certs.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mailward::common {

Result<std::string> read_file(const std::filesystem::path& path);

// Creates or replaces path with content, durable on return; mode is applied before any byte is written.
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode);

Result<void> make_dirs(const std::filesystem::path& path, unsigned mode = 0700);

}  // namespace mailward::common
