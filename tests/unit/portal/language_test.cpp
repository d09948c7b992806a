// Accept-Language (RFC 9110 12.5.4) as tables: the parser (ranges, q-values, malformed headers)
// and the language the portal picks from it, English the fallback.
#include <gtest/gtest.h>

#include "portal/language.hpp"

using namespace mailward;
using namespace mailward::portal;

namespace {

TEST(AcceptLanguage, Parses) {
    using Ranges = std::vector<LanguageRange>;
    struct Row {
        std::string in;
        std::optional<Ranges> want;
    } rows[] = {
        {"de", Ranges{{"de", 1000}}},
        {"de-DE,de;q=0.9,en;q=0.8", Ranges{{"de-de", 1000}, {"de", 900}, {"en", 800}}},
        {"en-US , fr ; q=0.5", Ranges{{"en-us", 1000}, {"fr", 500}}},
        {"*;q=0.1", Ranges{{"*", 100}}},
        {"de;Q=1.000", Ranges{{"de", 1000}}},
        {"de;q=0", Ranges{{"de", 0}}},
        {"zh-Hant-TW;q=0.25", Ranges{{"zh-hant-tw", 250}}},
        {"de,,en", Ranges{{"de", 1000}, {"en", 1000}}},
        {"", Ranges{}},
        {"de;q=1.5", std::nullopt},
        {"de;q=0.1234", std::nullopt},
        {"de;q=", std::nullopt},
        {"de;x=1", std::nullopt},
        {"de;q=abc", std::nullopt},
        {"d3", std::nullopt},
        {"toolongtag", std::nullopt},
        {"de-", std::nullopt},
        {"-de", std::nullopt},
        {"de_DE", std::nullopt},
        {"<script>", std::nullopt},
        {std::string(5000, 'a'), std::nullopt},
    };
    for (const auto& r : rows) EXPECT_EQ(parse_accept_language(r.in), r.want) << r.in;
}

TEST(AcceptLanguage, Chooses) {
    using escrow::Lang;
    struct Row {
        std::optional<std::string> header;
        Lang want;
    } rows[] = {
        {std::nullopt, Lang::en},
        {"", Lang::en},
        {"de", Lang::de},
        {"de-DE", Lang::de},  // a longer range names its language
        {"de-AT;q=0.9, en;q=0.5", Lang::de},
        {"en;q=0.5, de;q=0.9", Lang::de},  // the higher weight, not the first
        {"de, en", Lang::de},              // a tie: the earlier range
        {"en, de", Lang::en},
        {"de;q=0, en;q=0.1", Lang::en},  // q=0 excludes
        {"de;q=0, *", Lang::en},         // "*" names English, de is excluded
        {"de;q=0", Lang::en},            // nothing acceptable: English
        {"fr, de;q=0.2", Lang::de},
        {"fr", Lang::en},  // nothing we have
        {"*", Lang::en},
        {"de-DE;q=0, de;q=0.7", Lang::de},  // the more specific range for "de" is the tag
        {"de;q=0.7;x, de", Lang::en},       // malformed: ignored
        {"de;q=2", Lang::en},
        {"DE", Lang::de},
    };
    for (const auto& r : rows)
        EXPECT_EQ(choose_language(r.header ? std::optional<std::string_view>(*r.header) : std::nullopt), r.want)
            << (r.header ? *r.header : "(none)");
}

}  // namespace
