// The allow-list HTML sanitizer (see html_sanitizer.hpp). Gumbo builds the tree with an arena
// allocator (its own recursive teardown is never used, so deep nesting cannot exhaust the stack);
// the walk over the tree is iterative. Input with more start tags than max_tags is refused rather
// than parsed: the HTML tree construction has worst cases quadratic in nesting depth.
#include "portal/html_sanitizer.hpp"

#include <gumbo.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <vector>

namespace mailward::portal {
namespace {

// ---- the allow-lists ----

// Kept, with their children: text structure and formatting, lists, tables, links and images.
constexpr std::array<std::string_view, 58> kKeep = {
    "p",      "br",         "div",    "span",       "b",       "strong", "i",       "em",       "u",   "s",
    "small",  "sub",        "sup",    "blockquote", "pre",     "code",   "hr",      "h1",       "h2",  "h3",
    "h4",     "h5",         "h6",     "ul",         "ol",      "li",     "dl",      "dt",       "dd",  "table",
    "thead",  "tbody",      "tfoot",  "tr",         "td",      "th",     "caption", "colgroup", "col", "a",
    "img",    "font",       "center", "abbr",       "address", "cite",   "q",       "del",      "ins", "mark",
    "figure", "figcaption", "strike", "tt",         "big",     "kbd",    "samp",    "var"};
// Dropped WITH their content: active content, styling the page, forms, embedded documents, media.
constexpr std::array<std::string_view, 29> kDropWithContent = {
    "script", "style", "noscript", "template", "iframe", "frame",  "frameset", "object", "embed",  "applet",
    "svg",    "math",  "form",     "input",    "button", "select", "textarea", "link",   "meta",   "base",
    "title",  "audio", "video",    "source",   "track",  "canvas", "portal",   "dialog", "noembed"};
constexpr std::array<std::string_view, 4> kVoid = {"br", "hr", "img", "col"};
// Attributes any kept element may have. No id/name (DOM clobbering), no class (no style sheet is
// kept for it to select), no event handlers, nothing that loads a resource except a/img below.
constexpr std::array<std::string_view, 18> kAttrs = {
    "title",       "dir",     "lang",    "align",   "valign", "width", "height", "border", "cellpadding",
    "cellspacing", "colspan", "rowspan", "bgcolor", "color",  "face",  "size",   "start",  "style"};
// CSS properties kept in style attributes, by exact name (text, colours, box sizes, borders).
constexpr std::array<std::string_view, 62> kCss = {"color",
                                                   "background-color",
                                                   "font",
                                                   "font-family",
                                                   "font-size",
                                                   "font-style",
                                                   "font-weight",
                                                   "font-variant",
                                                   "text-align",
                                                   "text-decoration",
                                                   "text-decoration-line",
                                                   "text-decoration-color",
                                                   "text-decoration-style",
                                                   "text-indent",
                                                   "text-transform",
                                                   "letter-spacing",
                                                   "word-spacing",
                                                   "line-height",
                                                   "vertical-align",
                                                   "white-space",
                                                   "list-style-type",
                                                   "margin",
                                                   "margin-top",
                                                   "margin-right",
                                                   "margin-bottom",
                                                   "margin-left",
                                                   "padding",
                                                   "padding-top",
                                                   "padding-right",
                                                   "padding-bottom",
                                                   "padding-left",
                                                   "border",
                                                   "border-top",
                                                   "border-right",
                                                   "border-bottom",
                                                   "border-left",
                                                   "border-color",
                                                   "border-style",
                                                   "border-width",
                                                   "border-collapse",
                                                   "border-spacing",
                                                   "border-radius",
                                                   "border-top-color",
                                                   "border-top-style",
                                                   "border-top-width",
                                                   "border-right-color",
                                                   "border-right-style",
                                                   "border-right-width",
                                                   "border-bottom-color",
                                                   "border-bottom-style",
                                                   "border-bottom-width",
                                                   "border-left-color",
                                                   "border-left-style",
                                                   "border-left-width",
                                                   "width",
                                                   "height",
                                                   "max-width",
                                                   "min-width",
                                                   "max-height",
                                                   "min-height",
                                                   "table-layout",
                                                   "text-overflow"};

template <std::size_t N>
bool in(const std::array<std::string_view, N>& list, std::string_view s) {
    return std::find(list.begin(), list.end(), s) != list.end();
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

void escape_into(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\0': out += "\xEF\xBF\xBD"; break;
            default: out += c;
        }
    }
}

// A URL as a browser reads it: surrounding C0 controls and spaces stripped, TAB/CR/LF removed.
std::string normalised_url(std::string_view v) {
    std::string s;
    for (char c : v)
        if (c != '\t' && c != '\n' && c != '\r') s += c;
    auto keep = [](char c) { return static_cast<unsigned char>(c) > 0x20; };
    auto b = std::find_if(s.begin(), s.end(), keep);
    auto e = std::find_if(s.rbegin(), s.rend(), keep).base();
    return b < e ? std::string(b, e) : std::string();
}

// The scheme in lower case, "" when the URL has none (relative).
std::string scheme_of(const std::string& url) {
    auto colon = url.find(':');
    if (colon == std::string::npos || colon == 0) return {};
    auto stop = url.find_first_of("/?#");
    if (stop != std::string::npos && stop < colon) return {};
    return lower(url.substr(0, colon));
}

bool safe_href(const std::string& url) {
    const std::string s = scheme_of(url);
    return s == "http" || s == "https" || s == "mailto";
}

enum class ImageSrc { keep, remote, drop };
ImageSrc classify_src(const std::string& url) {
    const std::string l = lower(url);
    if (l.rfind("//", 0) == 0) return ImageSrc::remote;
    const std::string s = scheme_of(url);
    if (s == "http" || s == "https") return ImageSrc::remote;
    if (s == "cid") return ImageSrc::keep;
    for (const char* t :
         {"data:image/png;base64,", "data:image/gif;base64,", "data:image/jpeg;base64,", "data:image/webp;base64,"})
        if (l.rfind(t, 0) == 0) return ImageSrc::keep;
    return ImageSrc::drop;
}

// Keeps the allow-listed declarations of a style attribute; counts the dropped ones.
std::string filter_css(std::string_view style, std::size_t& dropped) {
    std::string out;
    while (!style.empty()) {
        auto semi = style.find(';');
        std::string_view decl = style.substr(0, semi);
        style = semi == std::string_view::npos ? std::string_view() : style.substr(semi + 1);
        auto colon = decl.find(':');
        if (colon == std::string_view::npos) {
            if (decl.find_first_not_of(" \t\r\n") != std::string_view::npos) ++dropped;
            continue;
        }
        std::string prop = lower(normalised_url(decl.substr(0, colon)));
        std::string value = normalised_url(decl.substr(colon + 1));
        std::string lv = lower(value);
        // Property names by exact match (fuzz_sanitizer found that family prefixes such as "font-"
        // let anything behind them through: "font-x#behavior<tab", "padding-back-moz-binding...").
        bool ok = !value.empty() && in(kCss, prop);
        for (const char* bad : {"url(", "expression", "javascript:", "vbscript:", "@import", "\\", "/*", "<", ">",
                                "behavior", "-moz-binding", "&", "image(", "image-set", "attr(", "var("})
            ok = ok && lv.find(bad) == std::string::npos;
        ok =
            ok && std::none_of(value.begin(), value.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
        if (!ok) {
            ++dropped;
            continue;
        }
        if (!out.empty()) out += "; ";
        out += prop + ": " + value;
    }
    return out;
}

std::string tag_name(const GumboElement& el) {
    if (el.tag != GUMBO_TAG_UNKNOWN) return gumbo_normalized_tagname(el.tag);
    GumboStringPiece p = el.original_tag;
    gumbo_tag_from_original_text(&p);
    return lower(std::string_view(p.data, p.length));
}

// Writes a kept element's start tag with its allowed attributes.
void start_tag(std::string& out, const std::string& name, const GumboElement& el, const SanitizeOptions& opt,
               SanitizeReport& rep) {
    out += '<';
    out += name;
    bool has_href = false;
    for (unsigned i = 0; i < el.attributes.length; ++i) {
        const auto* a = static_cast<const GumboAttribute*>(el.attributes.data[i]);
        std::string an = lower(a->name);
        std::string value = a->value ? a->value : "";
        bool keep = false;
        if (an == "href" && name == "a") {
            value = normalised_url(value);
            keep = safe_href(value);
            has_href = keep;
        } else if (an == "src" && name == "img") {
            value = normalised_url(value);
            auto c = classify_src(value);
            if (c == ImageSrc::remote && !opt.allow_remote_images) ++rep.blocked_images;
            keep = c == ImageSrc::keep || (c == ImageSrc::remote && opt.allow_remote_images);
            if (!keep) continue;  // counted as blocked or silently dropped, not as an attribute
        } else if (an == "alt" && name == "img") {
            keep = true;
        } else if (an == "style") {
            value = filter_css(value, rep.removed_attributes);
            keep = !value.empty();
            if (!keep) continue;
        } else if (an == "dir") {
            std::string l = lower(value);
            keep = l == "ltr" || l == "rtl" || l == "auto";
        } else if (an == "type" && (name == "ol" || name == "ul" || name == "li")) {
            keep = value == "1" || value == "a" || value == "A" || value == "i" || value == "I" || value == "disc" ||
                   value == "circle" || value == "square";
        } else {
            keep = in(kAttrs, an);
        }
        if (!keep) {
            ++rep.removed_attributes;
            continue;
        }
        out += ' ';
        out += an;
        out += "=\"";
        escape_into(out, value);
        out += '"';
    }
    if (has_href) out += " rel=\"noopener noreferrer\" target=\"_blank\"";
    out += '>';
}

// Counts what looks like start tags: an upper bound on the elements Gumbo would create.
std::size_t start_tags(std::string_view html) {
    std::size_t n = 0;
    for (std::size_t i = 0; i + 1 < html.size(); ++i) {
        if (html[i] != '<') continue;
        char c = html[i + 1];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) ++n;
    }
    return n;
}

// Gumbo's memory comes from here and is freed in one go (gumbo_destroy_output recurses).
struct Arena {
    std::vector<void*> blocks;
    ~Arena() {
        for (void* p : blocks) std::free(p);
    }
    static void* alloc(void* self, size_t n) {
        void* p = std::malloc(n ? n : 1);
        if (!p) std::abort();  // as Gumbo's own allocator does
        static_cast<Arena*>(self)->blocks.push_back(p);
        return p;
    }
    static void release(void*, void*) {}
};

}  // namespace

bool kept_element(std::string_view name) { return in(kKeep, name); }

Sanitized sanitize_html(std::string_view html, const SanitizeOptions& opt) {
    Sanitized result;
    auto& rep = result.report;
    if (start_tags(html) > opt.max_tags) {
        rep.refused = true;
        return result;
    }
    Arena arena;
    GumboOptions options = kGumboDefaultOptions;
    options.allocator = &Arena::alloc;
    options.deallocator = &Arena::release;
    options.userdata = &arena;
    options.max_errors = 0;   // no error list: nobody reads it
    std::string input(html);  // Gumbo wants a terminated buffer; NUL bytes become U+FFFD there
    GumboOutput* output = gumbo_parse_with_options(&options, input.data(), input.size());
    if (!output || !output->root) return result;

    // Start at <body> (head content such as <title> is not shown).
    const GumboNode* start = output->root;
    const GumboVector& top = output->root->v.element.children;
    for (unsigned i = 0; i < top.length; ++i) {
        const auto* n = static_cast<const GumboNode*>(top.data[i]);
        if (n->type == GUMBO_NODE_ELEMENT && n->v.element.tag == GUMBO_TAG_BODY) start = n;
    }

    struct Frame {
        const GumboNode* node;
        unsigned next = 0;  // next child to visit
        std::string close;  // end tag to write when done ("" if unwrapped or void)
        std::size_t depth = 0;
    };
    std::vector<Frame> stack;
    stack.push_back({start, 0, "", 0});
    std::string& out = result.html;
    while (!stack.empty()) {
        Frame& f = stack.back();
        const GumboVector* children = f.node->type == GUMBO_NODE_ELEMENT ? &f.node->v.element.children : nullptr;
        if (!children || f.next >= children->length || rep.truncated) {
            out += f.close;
            stack.pop_back();
            continue;
        }
        const auto* child = static_cast<const GumboNode*>(children->data[f.next++]);
        const std::size_t depth = f.depth;
        if (out.size() > opt.max_output) {
            rep.truncated = true;
            continue;
        }
        switch (child->type) {
            case GUMBO_NODE_TEXT:
            case GUMBO_NODE_WHITESPACE:
            case GUMBO_NODE_CDATA: escape_into(out, child->v.text.text ? child->v.text.text : ""); break;
            case GUMBO_NODE_COMMENT:
            case GUMBO_NODE_DOCUMENT: break;
            case GUMBO_NODE_TEMPLATE: ++rep.removed_elements; break;
            case GUMBO_NODE_ELEMENT: {
                const GumboElement& el = child->v.element;
                const std::string name = tag_name(el);
                const bool html_ns = el.tag_namespace == GUMBO_NAMESPACE_HTML;
                if (!html_ns || in(kDropWithContent, name)) {
                    ++rep.removed_elements;  // foreign content (svg, math) and active content
                    break;
                }
                if (!in(kKeep, name) || depth >= opt.max_depth) {
                    if (!in(kKeep, name)) ++rep.removed_elements;
                    stack.push_back({child, 0, "", depth});  // unwrapped: children only
                    break;
                }
                start_tag(out, name, el, opt, rep);
                if (in(kVoid, name)) break;
                stack.push_back({child, 0, "</" + name + ">", depth + 1});
                break;
            }
        }
    }
    // The arena frees everything Gumbo allocated; gumbo_destroy_output is not called.
    return result;
}

}  // namespace mailward::portal
