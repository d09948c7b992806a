// libFuzzer target for the portal's HTML sanitizer (portal/html_sanitizer.hpp), fed hostile HTML.
// Oracle: the output, parsed again by Gumbo the way a browser parses it, holds only allow-listed
// elements; no event handler or unknown attribute; links only http/https/mailto, images only cid:
// or data:image; style declarations free of url(), expression() and script schemes. A refused
// input yields nothing; sanitizing the output again keeps it free of those (no mutation XSS).
#include <gumbo.h>

#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "portal/html_sanitizer.hpp"

using namespace mailward;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

// The URL as a browser reads it: TAB/CR/LF removed, leading C0 controls and spaces stripped.
std::string browser_url(std::string_view v) {
    std::string s;
    for (char c : v)
        if (c != '\t' && c != '\n' && c != '\r') s += c;
    std::size_t b = 0;
    while (b < s.size() && static_cast<unsigned char>(s[b]) <= 0x20) ++b;
    return lower(s.substr(b));
}

void check_attribute(const std::string& element, const GumboAttribute& a) {
    const std::string name = lower(a.name);
    const std::string value = a.value ? a.value : "";
    fuzz::check(!starts_with(name, "on"), "no event handler attribute");
    fuzz::check(name != "id" && name != "name" && name != "class" && name != "srcdoc" && name != "formaction" &&
                    name != "xmlns" && name != "action" && name != "background" && name != "srcset",
                "no clobbering or loading attribute");
    if (name == "href") {
        fuzz::check(element == "a", "href only on a");
        const std::string url = browser_url(value);
        fuzz::check(starts_with(url, "http:") || starts_with(url, "https:") || starts_with(url, "mailto:"),
                    "href scheme allowed");
    }
    if (name == "src") {
        fuzz::check(element == "img", "src only on img");
        const std::string url = browser_url(value);
        fuzz::check(starts_with(url, "cid:") || starts_with(url, "data:image/"), "img src is local");
    }
    if (name == "style") {
        // "prop: value" declarations: the property a CSS identifier and not an active one, the value
        // without anything that loads or runs.
        std::string_view rest = value;
        while (!rest.empty()) {
            const auto semi = rest.find(';');
            const std::string decl = lower(rest.substr(0, semi));
            rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
            const auto colon = decl.find(':');
            fuzz::check(colon != std::string::npos, "a style declaration has a property");
            std::string prop = decl.substr(0, colon);
            while (!prop.empty() && prop.front() == ' ') prop.erase(prop.begin());
            for (char c : prop) fuzz::check((c >= 'a' && c <= 'z') || c == '-', "a style property is an identifier");
            fuzz::check(prop != "behavior" && prop != "-moz-binding", "no active style property");
            const std::string v = decl.substr(colon + 1);
            for (const char* bad : {"url(", "expression", "javascript:", "vbscript:", "@import"})
                fuzz::check(v.find(bad) == std::string::npos, "style value allowed");
        }
    }
    if (name == "rel" || name == "target") fuzz::check(element == "a", "rel/target only on links");
}

// Walks what a browser would build from html; returns the number of elements seen.
std::size_t check_tree(const std::string& html) {
    GumboOutput* out = gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size());
    fuzz::check(out && out->root, "output parses");
    std::size_t elements = 0;
    std::vector<const GumboNode*> todo{out->root};
    while (!todo.empty()) {
        const GumboNode* n = todo.back();
        todo.pop_back();
        if (n->type != GUMBO_NODE_ELEMENT && n->type != GUMBO_NODE_TEMPLATE) continue;
        const GumboElement& el = n->v.element;
        fuzz::check(n->type == GUMBO_NODE_ELEMENT, "no template element");
        fuzz::check(el.tag_namespace == GUMBO_NAMESPACE_HTML, "no foreign (svg, math) content");
        const std::string name =
            el.tag == GUMBO_TAG_UNKNOWN ? std::string("unknown") : gumbo_normalized_tagname(el.tag);
        const bool implied = name == "html" || name == "head" || name == "body";
        fuzz::check(implied || portal::kept_element(name), "only allow-listed elements");
        if (implied) {
            fuzz::check(el.attributes.length == 0, "no attribute on html/head/body");
        } else {
            ++elements;
        }
        for (unsigned i = 0; i < el.attributes.length; ++i)
            check_attribute(name, *static_cast<const GumboAttribute*>(el.attributes.data[i]));
        for (unsigned i = 0; i < el.children.length; ++i)
            todo.push_back(static_cast<const GumboNode*>(el.children.data[i]));
    }
    gumbo_destroy_output(&kGumboDefaultOptions, out);
    return elements;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::uint8_t bits = in.byte();
    portal::SanitizeOptions opt;
    if (bits & 1) opt.max_depth = 1 + (bits >> 4);
    if (bits & 2) opt.max_output = 64 + 16 * (bits >> 2);
    if (bits & 4) opt.max_tags = bits >> 3;
    const std::string_view html = in.rest();

    const auto first = portal::sanitize_html(html, opt);
    if (first.report.refused) {
        fuzz::check(first.html.empty(), "refused input yields nothing");
        return 0;
    }
    fuzz::check(first.html.find('\0') == std::string::npos, "no NUL in the output");
    check_tree(first.html);
    const auto second = portal::sanitize_html(first.html);
    check_tree(second.html);
    return 0;
}
