// Internal to mailward_config: the [[dkim]] array of tables (config/dkim.cpp), read from the root of
// the TOML tree and checked with the other files the configuration names.
#pragma once

#include <toml++/toml.h>

#include "config/config.hpp"
#include "config/reader.hpp"

namespace mailward::config::detail {

void read_dkim(Reader& r, const toml::node& n, Config& c);
// Every key_file exists and group and others cannot read it (only when open_files).
void check_dkim(Reader& r, const Config& cfg, bool open_files);

}  // namespace mailward::config::detail
