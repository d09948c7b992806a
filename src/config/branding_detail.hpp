// Internal to mailward_config: the [branding] section's values (config/branding.cpp): the
// organisation's name, the logo file, the accent colour, the support contact and the mails'
// language, each checked at load with file:line errors.
#pragma once

#include <toml++/toml.h>

#include "config/config.hpp"
#include "config/reader.hpp"

namespace mailward::config::detail {

void read_organization(Reader& r, const toml::node& n, Config& c);
void read_color(Reader& r, const toml::node& n, Config& c);
void read_support_contact(Reader& r, const toml::node& n, Config& c);
// logo_file is a PNG or JPEG of at most kMaxLogoSize octets (only when open_files).
void check_branding(Reader& r, const Config& cfg, bool open_files);

}  // namespace mailward::config::detail
