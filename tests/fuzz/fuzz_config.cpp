// libFuzzer target for the TOML configuration loader (config/config.hpp: toml++ and mailward's
// typed reading of every section), with the named files left unopened. Invariants: it never throws
// or crashes; a refused file has at least one problem, the message is the first of them, and every
// problem is one line of printable text that names the file (so a hostile value cannot forge log or
// terminal lines); an accepted one has sane limits.
#include <string>

#include "config/config.hpp"
#include "fuzz_common.hpp"

using namespace mailward;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    config::ConfigError error;
    auto cfg = config::parse(text, "fuzz.toml", error, config::FileChecks::skip);
    if (!cfg) {
        fuzz::check(!error.problems.empty(), "a refused file has a problem");
        fuzz::check(error.message == error.problems.front(), "the message is the first problem");
        for (const auto& p : error.problems) {
            fuzz::check(p.rfind("fuzz.toml", 0) == 0, "a problem names the file");
            for (char c : p)
                fuzz::check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "a problem is one printable line");
        }
        return 0;
    }
    fuzz::check(error.problems.empty() && error.message.empty(), "no problem for an accepted file");
    fuzz::check(!cfg->server.user.empty() && cfg->server.user != "root", "never root");
    fuzz::check(cfg->submission.max_connections > 0, "connections allowed");
    return 0;
}
