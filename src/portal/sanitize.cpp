// sanitize_html (see sanitize.hpp): hostile HTML -> an allow-listed, re-serialised fragment.
// Three steps: (1) ParserGuard bounds the work Gumbo will do (Gumbo 0.10 is quadratic in nesting
// depth and in attributes per tag, and re-creates misnested formatting elements without limit);
// (2) Gumbo parses as a browser would (WHATWG HTML tree construction); (3) Writer walks the tree
// iteratively and writes only allow-listed elements, attributes, URLs (WHATWG URL normalisation,
// RFC 3986 schemes, RFC 2397 data: images, RFC 2392 cid:) and CSS declarations, escaping itself.
// Trusts nothing in the input; trusts Gumbo only to return a well-formed tree.
#include "portal/sanitize.hpp"

#include <gumbo.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <unordered_map>
#include <vector>

namespace mailward::portal {
inline namespace gumbo_allowlist {
namespace {

// ---------------------------------------------------------------------------------------------
// Tag properties shared by the guard's model of tree construction (WHATWG HTML 13.2.4, 13.2.6).
// The model must never see LESS nesting than Gumbo builds: where in doubt a flag errs towards
// "special" / "scope boundary" (fewer pops) and away from "closes p" / "void" (more pops).

enum : std::uint32_t {
    kSpecial = 1u << 0,       // "special" category (Gumbo's is_special_node)
    kScopeDefault = 1u << 1,  // boundary of "has an element in scope"
    kScopeList = 1u << 2,     // extra boundary of list item scope
    kScopeButton = 1u << 3,   // extra boundary of button scope
    kScopeTable = 1u << 4,    // boundary of table scope
    kFormatting = 1u << 5,    // active formatting element
    kMarker = 1u << 6,        // inserts a marker in the active formatting list
    kVoid = 1u << 7,          // never pushed
    kRawText = 1u << 8,       // RAWTEXT / RCDATA / script data up to its end tag
    kClosesP = 1u << 9,       // start tag closes a p in button scope
    kBreakout = 1u << 10,     // start tag leaves foreign content
    kTableEnd = 1u << 11,     // end tag checked in table scope
    kHeading = 1u << 12,
    kReconstructs = 1u << 13,  // special start tags that still reconstruct formatting elements
    kIntegration = 1u << 14,   // (foreign) children are parsed as HTML
};

struct TagFlags {
    std::array<std::uint32_t, GUMBO_TAG_LAST + 1> html{};
    std::array<std::uint32_t, GUMBO_TAG_LAST + 1> foreign{};
};

TagFlags make_tag_flags() {
    TagFlags t;
    auto set = [&t](std::uint32_t flag, std::initializer_list<GumboTag> tags) {
        for (GumboTag g : tags) t.html[g] |= flag;
    };
    set(kSpecial,
        {GUMBO_TAG_ADDRESS, GUMBO_TAG_APPLET, GUMBO_TAG_AREA, GUMBO_TAG_ARTICLE, GUMBO_TAG_ASIDE,
         GUMBO_TAG_BASE, GUMBO_TAG_BASEFONT, GUMBO_TAG_BGSOUND, GUMBO_TAG_BLOCKQUOTE, GUMBO_TAG_BODY,
         GUMBO_TAG_BR, GUMBO_TAG_BUTTON, GUMBO_TAG_CAPTION, GUMBO_TAG_CENTER, GUMBO_TAG_COL,
         GUMBO_TAG_COLGROUP, GUMBO_TAG_MENUITEM, GUMBO_TAG_DD, GUMBO_TAG_DETAILS, GUMBO_TAG_DIR,
         GUMBO_TAG_DIV, GUMBO_TAG_DL, GUMBO_TAG_DT, GUMBO_TAG_EMBED, GUMBO_TAG_FIELDSET,
         GUMBO_TAG_FIGCAPTION, GUMBO_TAG_FIGURE, GUMBO_TAG_FOOTER, GUMBO_TAG_FORM, GUMBO_TAG_FRAME,
         GUMBO_TAG_FRAMESET, GUMBO_TAG_H1, GUMBO_TAG_H2, GUMBO_TAG_H3, GUMBO_TAG_H4, GUMBO_TAG_H5,
         GUMBO_TAG_H6, GUMBO_TAG_HEAD, GUMBO_TAG_HEADER, GUMBO_TAG_HGROUP, GUMBO_TAG_HR,
         GUMBO_TAG_HTML, GUMBO_TAG_IFRAME, GUMBO_TAG_IMG, GUMBO_TAG_INPUT, GUMBO_TAG_ISINDEX,
         GUMBO_TAG_LI, GUMBO_TAG_LINK, GUMBO_TAG_LISTING, GUMBO_TAG_MAIN, GUMBO_TAG_MARQUEE,
         GUMBO_TAG_MENU, GUMBO_TAG_META, GUMBO_TAG_NAV, GUMBO_TAG_NOEMBED, GUMBO_TAG_NOFRAMES,
         GUMBO_TAG_NOSCRIPT, GUMBO_TAG_OBJECT, GUMBO_TAG_OL, GUMBO_TAG_P, GUMBO_TAG_PARAM,
         GUMBO_TAG_PLAINTEXT, GUMBO_TAG_PRE, GUMBO_TAG_SCRIPT, GUMBO_TAG_SECTION, GUMBO_TAG_SELECT,
         GUMBO_TAG_STYLE, GUMBO_TAG_SUMMARY, GUMBO_TAG_TABLE, GUMBO_TAG_TBODY, GUMBO_TAG_TD,
         GUMBO_TAG_TEMPLATE, GUMBO_TAG_TEXTAREA, GUMBO_TAG_TFOOT, GUMBO_TAG_TH, GUMBO_TAG_THEAD,
         GUMBO_TAG_TITLE, GUMBO_TAG_TR, GUMBO_TAG_UL, GUMBO_TAG_WBR, GUMBO_TAG_XMP});
    set(kScopeDefault | kScopeList | kScopeButton,
        {GUMBO_TAG_APPLET, GUMBO_TAG_CAPTION, GUMBO_TAG_HTML, GUMBO_TAG_TABLE, GUMBO_TAG_TD,
         GUMBO_TAG_TH, GUMBO_TAG_MARQUEE, GUMBO_TAG_OBJECT, GUMBO_TAG_TEMPLATE});
    set(kScopeList, {GUMBO_TAG_OL, GUMBO_TAG_UL});
    set(kScopeButton, {GUMBO_TAG_BUTTON});
    set(kScopeTable, {GUMBO_TAG_HTML, GUMBO_TAG_TABLE, GUMBO_TAG_TEMPLATE});
    set(kFormatting,
        {GUMBO_TAG_A, GUMBO_TAG_B, GUMBO_TAG_BIG, GUMBO_TAG_CODE, GUMBO_TAG_EM, GUMBO_TAG_FONT,
         GUMBO_TAG_I, GUMBO_TAG_NOBR, GUMBO_TAG_S, GUMBO_TAG_SMALL, GUMBO_TAG_STRIKE,
         GUMBO_TAG_STRONG, GUMBO_TAG_TT, GUMBO_TAG_U});
    set(kMarker, {GUMBO_TAG_APPLET, GUMBO_TAG_OBJECT, GUMBO_TAG_MARQUEE, GUMBO_TAG_TEMPLATE,
                  GUMBO_TAG_TD, GUMBO_TAG_TH, GUMBO_TAG_CAPTION});
    set(kVoid, {GUMBO_TAG_AREA, GUMBO_TAG_BASE, GUMBO_TAG_BASEFONT, GUMBO_TAG_BGSOUND,
                GUMBO_TAG_BR, GUMBO_TAG_COL, GUMBO_TAG_EMBED, GUMBO_TAG_FRAME, GUMBO_TAG_HR,
                GUMBO_TAG_IMAGE, GUMBO_TAG_IMG, GUMBO_TAG_INPUT, GUMBO_TAG_KEYGEN, GUMBO_TAG_LINK,
                GUMBO_TAG_META, GUMBO_TAG_PARAM, GUMBO_TAG_SOURCE, GUMBO_TAG_TRACK, GUMBO_TAG_WBR});
    set(kRawText, {GUMBO_TAG_SCRIPT, GUMBO_TAG_STYLE, GUMBO_TAG_XMP, GUMBO_TAG_IFRAME,
                   GUMBO_TAG_NOEMBED, GUMBO_TAG_NOFRAMES, GUMBO_TAG_TEXTAREA, GUMBO_TAG_TITLE});
    set(kClosesP,
        {GUMBO_TAG_ADDRESS, GUMBO_TAG_ARTICLE, GUMBO_TAG_ASIDE, GUMBO_TAG_BLOCKQUOTE,
         GUMBO_TAG_CENTER, GUMBO_TAG_DETAILS, GUMBO_TAG_DIR, GUMBO_TAG_DIV, GUMBO_TAG_DL,
         GUMBO_TAG_FIELDSET, GUMBO_TAG_FIGCAPTION, GUMBO_TAG_FIGURE, GUMBO_TAG_FOOTER,
         GUMBO_TAG_HEADER, GUMBO_TAG_HGROUP, GUMBO_TAG_MAIN, GUMBO_TAG_MENU, GUMBO_TAG_NAV,
         GUMBO_TAG_OL, GUMBO_TAG_P, GUMBO_TAG_SECTION, GUMBO_TAG_SUMMARY, GUMBO_TAG_UL,
         GUMBO_TAG_H1, GUMBO_TAG_H2, GUMBO_TAG_H3, GUMBO_TAG_H4, GUMBO_TAG_H5, GUMBO_TAG_H6,
         GUMBO_TAG_PRE, GUMBO_TAG_LISTING, GUMBO_TAG_LI, GUMBO_TAG_DD, GUMBO_TAG_DT,
         GUMBO_TAG_HR, GUMBO_TAG_XMP});
    set(kBreakout,
        {GUMBO_TAG_B, GUMBO_TAG_BIG, GUMBO_TAG_BLOCKQUOTE, GUMBO_TAG_BODY, GUMBO_TAG_BR,
         GUMBO_TAG_CENTER, GUMBO_TAG_CODE, GUMBO_TAG_DD, GUMBO_TAG_DIV, GUMBO_TAG_DL, GUMBO_TAG_DT,
         GUMBO_TAG_EM, GUMBO_TAG_EMBED, GUMBO_TAG_H1, GUMBO_TAG_H2, GUMBO_TAG_H3, GUMBO_TAG_H4,
         GUMBO_TAG_H5, GUMBO_TAG_H6, GUMBO_TAG_HEAD, GUMBO_TAG_HR, GUMBO_TAG_I, GUMBO_TAG_IMG,
         GUMBO_TAG_LI, GUMBO_TAG_LISTING, GUMBO_TAG_MENU, GUMBO_TAG_META, GUMBO_TAG_NOBR,
         GUMBO_TAG_OL, GUMBO_TAG_P, GUMBO_TAG_PRE, GUMBO_TAG_RUBY, GUMBO_TAG_S, GUMBO_TAG_SMALL,
         GUMBO_TAG_SPAN, GUMBO_TAG_STRONG, GUMBO_TAG_STRIKE, GUMBO_TAG_SUB, GUMBO_TAG_SUP,
         GUMBO_TAG_TABLE, GUMBO_TAG_TT, GUMBO_TAG_U, GUMBO_TAG_UL, GUMBO_TAG_VAR});
    set(kTableEnd, {GUMBO_TAG_TABLE, GUMBO_TAG_TBODY, GUMBO_TAG_THEAD, GUMBO_TAG_TFOOT,
                    GUMBO_TAG_TR, GUMBO_TAG_TD, GUMBO_TAG_TH, GUMBO_TAG_CAPTION, GUMBO_TAG_COLGROUP});
    set(kHeading, {GUMBO_TAG_H1, GUMBO_TAG_H2, GUMBO_TAG_H3, GUMBO_TAG_H4, GUMBO_TAG_H5,
                   GUMBO_TAG_H6});
    set(kReconstructs, {GUMBO_TAG_APPLET, GUMBO_TAG_MARQUEE, GUMBO_TAG_OBJECT, GUMBO_TAG_AREA,
                        GUMBO_TAG_BR, GUMBO_TAG_EMBED, GUMBO_TAG_IMG, GUMBO_TAG_KEYGEN,
                        GUMBO_TAG_WBR, GUMBO_TAG_INPUT, GUMBO_TAG_SELECT});
    const std::uint32_t point = kSpecial | kScopeDefault | kScopeList | kScopeButton | kIntegration;
    for (GumboTag g : {GUMBO_TAG_MI, GUMBO_TAG_MO, GUMBO_TAG_MN, GUMBO_TAG_MS, GUMBO_TAG_MTEXT,
                       GUMBO_TAG_ANNOTATION_XML, GUMBO_TAG_FOREIGNOBJECT, GUMBO_TAG_DESC,
                       GUMBO_TAG_TITLE})
        t.foreign[g] = point;
    return t;
}

const TagFlags& tag_flags() {
    static const TagFlags flags = make_tag_flags();
    return flags;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::uint64_t fnv(std::string_view s, std::uint64_t h = 1469598103934665603ull) {
    for (char c : s) h = (h ^ static_cast<unsigned char>(lower(c))) * 1099511628211ull;
    return h;
}

GumboTag tag_of(std::string_view name) {
    if (name.empty() || name.size() > 16) return GUMBO_TAG_UNKNOWN;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            return GUMBO_TAG_UNKNOWN;
    return gumbo_tagn_enum(name.data(), static_cast<unsigned>(name.size()));
}

// ---------------------------------------------------------------------------------------------
// ParserGuard: one linear pass over the input with an approximate HTML tokenizer and a cheap model
// of Gumbo's stack of open elements and list of active formatting elements. It charges every token
// with an estimate of Gumbo's cost (calibrated on Gumbo 0.10.1) and rewrites the input Gumbo sees:
// start tags that would nest deeper than the depth cap, formatting elements past kMaxActive,
// attributes past kMaxAttributes and html/body start tags (their attributes are merged, never
// rendered) are left out; when the budget is spent the input is cut there (report.truncated).
// Mistakes of the model only change what is rendered, never what is allowed: the Writer filters
// whatever tree Gumbo builds.

constexpr std::size_t kMaxAttributes = 64;  // per tag; Gumbo's duplicate check is quadratic
constexpr std::size_t kMaxActive = 24;      // active formatting elements (each may be re-created)
// Cost units are roughly nanoseconds of Gumbo time on the reference machine; the budget is
// about 0.4 s of parsing, which still takes 5 MiB of plain text whole.
constexpr std::uint64_t kBudget = 420'000'000;
constexpr std::uint64_t kTagCost = 1500;      // a tag token and its node
constexpr std::uint64_t kDepthCost = 4;       // per open element scanned by a scope check
constexpr std::uint64_t kTextCost = 60;       // per byte of character data
constexpr std::uint64_t kAttributeCost = 40;  // per attribute, plus 4 per pair compared
constexpr std::uint64_t kCloneByteCost = 2;   // per byte of a re-created formatting element's tag

class ParserGuard {
  public:
    ParserGuard(std::string_view in, std::size_t depth_cap) : in_(in), depth_cap_(depth_cap) {
        html_last_.fill(-1);
    }

    // The text Gumbo may parse: in_ itself, or rewritten_ (tags left out or trimmed, or cut).
    std::string_view run();
    bool truncated() const { return truncated_; }
    std::size_t left_out() const { return left_out_; }

  private:
    struct Open {
        GumboTag tag;
        bool foreign;
        bool integration;
        bool marker;
        std::uint64_t name;       // hash of a foreign element's name
        std::int32_t prev_same;   // previous open element with the same tag (or foreign name)
        std::int32_t scope[4];    // nearest boundary at or below, per scope kind; -1 for none
        std::uint32_t specials;   // special elements at or below
        std::uint32_t html_count; // HTML elements at or below
    };
    struct Active {               // an entry of the active formatting list
        GumboTag tag;
        std::uint32_t level;      // markers open when it was added
        std::int32_t pos;         // index on the stack, -1 when not open
        std::uint64_t attrs;      // hash of its attributes (Noah's Ark clause)
        std::size_t bytes;        // size of its tag (copied on each re-creation)
    };
    struct Tag {
        std::size_t begin = 0, end = 0, name_end = 0;
        GumboTag tag = GUMBO_TAG_UNKNOWN;
        std::uint64_t name = 0;
        std::uint64_t attrs_hash = 0;
        std::size_t attr_count = 0;
        bool self_closing = false;
        bool complete = false;
        bool font_breakout = false;  // has color, face or size: a font that leaves foreign content
    };
    enum Scope { kDefault = 0, kList = 1, kButton = 2, kTable = 3 };
    enum class Decision { keep, leave_out, merge };

    bool charge(std::uint64_t cost) {
        if (spent_ > kBudget || cost > kBudget - spent_) return false;
        spent_ += cost;
        return true;
    }
    std::size_t depth() const { return stack_.size(); }
    bool html_context() const { return stack_.empty() || !stack_.back().foreign || stack_.back().integration; }
    std::int32_t top_scope(Scope s) const { return stack_.empty() ? -1 : stack_.back().scope[s]; }
    bool in_scope(Scope s, std::int32_t pos) const { return pos >= 0 && top_scope(s) <= pos; }
    bool special_above(std::int32_t pos) const {
        return stack_.back().specials != stack_[static_cast<std::size_t>(pos)].specials;
    }
    std::uint64_t text_scan() const;
    std::size_t off_stack() const;

    std::size_t parse_tag(std::size_t at, bool end_tag, Tag& tag);
    std::size_t skip_raw(std::size_t from, std::string_view name) const;
    void leave_out(std::size_t begin, std::size_t end);
    void rewrite_attributes(const Tag& tag);
    bool text(std::size_t begin, std::size_t end);
    Decision start_tag(const Tag& tag);
    bool end_tag(const Tag& tag);    // false: tag left out
    void html_end_tag(GumboTag tag);
    bool adoption(GumboTag tag);     // false: no such active element
    void push(GumboTag tag, bool foreign, std::uint64_t name);
    void pop_to(std::int32_t pos);
    void reconstruct();

    std::string_view in_;
    std::size_t depth_cap_;
    std::string rewritten_;
    std::size_t copied_ = 0;  // in_[0, copied_) is already in rewritten_ (or left out)
    bool rewriting_ = false;
    bool truncated_ = false;
    std::size_t left_out_ = 0;
    std::uint64_t spent_ = 0;
    std::vector<Open> stack_;
    std::vector<Active> active_;
    std::uint32_t markers_ = 0;
    std::array<std::int32_t, GUMBO_TAG_LAST + 1> html_last_;
    std::unordered_map<std::uint64_t, std::int32_t> foreign_last_;
    std::array<std::uint32_t, GUMBO_TAG_LAST + 1> left_open_{};  // start tags left out, by tag
    std::vector<std::pair<std::size_t, std::size_t>> attr_spans_;
};

void ParserGuard::push(GumboTag tag, bool foreign, std::uint64_t name) {
    const auto& flags = tag_flags();
    const std::uint32_t f = foreign ? flags.foreign[tag] : flags.html[tag];
    const auto idx = static_cast<std::int32_t>(stack_.size());
    Open o{tag, foreign, (f & kIntegration) != 0, !foreign && (f & kMarker) != 0, name, -1, {-1, -1, -1, -1}, 0, 0};
    if (!stack_.empty()) {
        const Open& p = stack_.back();
        std::copy(std::begin(p.scope), std::end(p.scope), std::begin(o.scope));
        o.specials = p.specials;
        o.html_count = p.html_count;
    }
    if (f & kScopeDefault) o.scope[kDefault] = idx;
    if (f & (kScopeDefault | kScopeList)) o.scope[kList] = idx;
    if (f & (kScopeDefault | kScopeButton)) o.scope[kButton] = idx;
    if (f & kScopeTable) o.scope[kTable] = idx;
    if (f & kSpecial) ++o.specials;
    if (!foreign) ++o.html_count;
    if (foreign) {
        auto [it, fresh] = foreign_last_.try_emplace(name, idx);
        if (!fresh) o.prev_same = std::exchange(it->second, idx);
    } else {
        o.prev_same = std::exchange(html_last_[tag], idx);
    }
    if (o.marker) ++markers_;
    stack_.push_back(o);
}

void ParserGuard::pop_to(std::int32_t pos) {
    if (pos < 0) return;
    while (static_cast<std::int32_t>(stack_.size()) > pos) {
        const Open& o = stack_.back();
        if (o.foreign) {
            if (o.prev_same < 0) foreign_last_.erase(o.name);
            else foreign_last_[o.name] = o.prev_same;
        } else {
            html_last_[o.tag] = o.prev_same;
        }
        if (o.marker) {  // clear the active formatting list up to the marker
            --markers_;
            while (!active_.empty() && active_.back().level > markers_) active_.pop_back();
        }
        stack_.pop_back();
    }
    for (Active& a : active_)
        if (a.pos >= pos) a.pos = -1;
}

std::size_t ParserGuard::off_stack() const {
    std::size_t n = 0;
    for (const Active& a : active_) n += (a.level == markers_ && a.pos < 0);
    return n;
}

// Gumbo checks the last active formatting element against the stack from the bottom for every
// character it inserts: the cost per byte grows with that element's position.
std::uint64_t ParserGuard::text_scan() const {
    if (active_.empty() || active_.back().level != markers_) return 0;
    return active_.back().pos < 0 ? depth() : static_cast<std::size_t>(active_.back().pos);
}

void ParserGuard::reconstruct() {
    for (Active& a : active_) {
        if (a.level != markers_ || a.pos >= 0) continue;
        spent_ += kTagCost + kDepthCost * depth() + kCloneByteCost * a.bytes;  // may overrun: next token cuts
        a.pos = static_cast<std::int32_t>(stack_.size());
        push(a.tag, false, 0);
    }
}

// The adoption agency algorithm, approximated so that the model never pops more than Gumbo does.
bool ParserGuard::adoption(GumboTag tag) {
    auto it = std::find_if(active_.rbegin(), active_.rend(),
                           [&](const Active& a) { return a.level == markers_ && a.tag == tag; });
    if (it == active_.rend()) return false;
    const std::int32_t pos = it->pos;
    if (pos < 0) {
        active_.erase(std::next(it).base());
    } else if (in_scope(kDefault, pos) && !special_above(pos)) {
        active_.erase(std::next(it).base());
        pop_to(pos);
    }
    // With a special element above it Gumbo moves nodes around without deepening the stack.
    return true;
}

void ParserGuard::html_end_tag(GumboTag tag) {
    const std::uint32_t f = tag_flags().html[tag];
    if (tag == GUMBO_TAG_HTML || tag == GUMBO_TAG_BODY || tag == GUMBO_TAG_BR) return;
    if (f & kFormatting) {
        if (adoption(tag)) return;
    }
    const std::int32_t pos = html_last_[tag];
    if (f & kHeading) {
        std::int32_t h = -1;
        for (GumboTag g : {GUMBO_TAG_H1, GUMBO_TAG_H2, GUMBO_TAG_H3, GUMBO_TAG_H4, GUMBO_TAG_H5, GUMBO_TAG_H6})
            h = std::max(h, html_last_[g]);
        if (in_scope(kDefault, h)) pop_to(h);
    } else if (tag == GUMBO_TAG_P) {
        if (in_scope(kButton, pos)) pop_to(pos);
    } else if (tag == GUMBO_TAG_LI) {
        if (in_scope(kList, pos)) pop_to(pos);
    } else if (f & kTableEnd) {
        if (in_scope(kTable, pos)) pop_to(pos);
    } else if (f & kSpecial) {
        if (in_scope(kDefault, pos)) pop_to(pos);
    } else if (pos >= 0 && !special_above(pos)) {  // "any other end tag"
        pop_to(pos);
    }
}

bool ParserGuard::end_tag(const Tag& t) {
    if (left_open_[t.tag] > 0) {  // closes a start tag that was left out
        --left_open_[t.tag];
        return false;
    }
    if (!stack_.empty() && stack_.back().foreign) {  // "in foreign content": match by name
        auto it = foreign_last_.find(t.name);
        if (it != foreign_last_.end() && stack_.back().html_count == stack_[it->second].html_count) {
            pop_to(it->second);
            return true;
        }
    }
    html_end_tag(t.tag);
    return true;
}

ParserGuard::Decision ParserGuard::start_tag(const Tag& t) {
    const auto& flags = tag_flags();
    GumboTag tag = t.tag;
    if (!html_context()) {
        const bool breakout = (flags.html[tag] & kBreakout) || (tag == GUMBO_TAG_FONT && t.font_breakout);
        if (!breakout) {
            if (t.self_closing) return Decision::keep;
            if (depth() >= depth_cap_) return Decision::leave_out;
            push(tag, true, t.name);
            return Decision::keep;
        }
        while (!html_context()) pop_to(static_cast<std::int32_t>(stack_.size()) - 1);
    }
    if (tag == GUMBO_TAG_HTML || tag == GUMBO_TAG_BODY) return Decision::merge;  // never rendered
    const std::uint32_t f = flags.html[tag];
    if (f & (kVoid | kRawText)) {
        if (!(f & kSpecial) || (f & kReconstructs)) reconstruct();
        return Decision::keep;
    }
    const bool formatting = (f & kFormatting) != 0;
    const bool table_cell = tag == GUMBO_TAG_TD || tag == GUMBO_TAG_TH;
    const bool row = tag == GUMBO_TAG_TR;
    // Plan first, change nothing if the tag is left out (Gumbo never sees it).
    std::size_t extra = 1 + off_stack();
    const std::int32_t table = html_last_[GUMBO_TAG_TABLE];
    const std::int32_t section = std::max({html_last_[GUMBO_TAG_TBODY], html_last_[GUMBO_TAG_THEAD],
                                           html_last_[GUMBO_TAG_TFOOT]});
    const bool needs_section = (table_cell || row) && section <= table;
    const bool needs_row = table_cell && html_last_[GUMBO_TAG_TR] <= table;
    extra += needs_section + needs_row;
    if (depth() + extra > depth_cap_) return Decision::leave_out;
    if (formatting) {
        std::size_t active = 0;
        for (const Active& a : active_) active += a.level == markers_;
        if (active >= kMaxActive) return Decision::leave_out;
    }
    // Implied end tags.
    if (f & kClosesP) {
        const std::int32_t p = html_last_[GUMBO_TAG_P];
        if (in_scope(kButton, p)) pop_to(p);
    }
    if ((f & kHeading) && !stack_.empty() && !stack_.back().foreign &&
        (flags.html[stack_.back().tag] & kHeading))
        pop_to(static_cast<std::int32_t>(stack_.size()) - 1);
    if (tag == GUMBO_TAG_LI || tag == GUMBO_TAG_DD || tag == GUMBO_TAG_DT) {
        std::int32_t pos = html_last_[tag];
        if (tag != GUMBO_TAG_LI) pos = std::max(html_last_[GUMBO_TAG_DD], html_last_[GUMBO_TAG_DT]);
        if (pos >= 0 && !special_above(pos)) pop_to(pos);
    }
    if (table_cell) {
        const std::int32_t cell = std::max(html_last_[GUMBO_TAG_TD], html_last_[GUMBO_TAG_TH]);
        if (cell > table) pop_to(cell);
    } else if (row) {
        if (html_last_[GUMBO_TAG_TR] > table) pop_to(html_last_[GUMBO_TAG_TR]);
    } else if (tag == GUMBO_TAG_TBODY || tag == GUMBO_TAG_THEAD || tag == GUMBO_TAG_TFOOT) {
        if (section > table) pop_to(section);
    } else if (tag == GUMBO_TAG_OPTION || tag == GUMBO_TAG_OPTGROUP) {
        if (!stack_.empty() && stack_.back().tag == GUMBO_TAG_OPTION) pop_to(static_cast<std::int32_t>(stack_.size()) - 1);
    } else if (tag == GUMBO_TAG_BUTTON) {
        if (in_scope(kDefault, html_last_[GUMBO_TAG_BUTTON])) pop_to(html_last_[GUMBO_TAG_BUTTON]);
    } else if (tag == GUMBO_TAG_A || tag == GUMBO_TAG_NOBR) {
        adoption(tag);
    }
    if (!(f & kSpecial) || (f & kReconstructs)) reconstruct();
    if (needs_section && html_last_[GUMBO_TAG_TBODY] <= html_last_[GUMBO_TAG_TABLE]) push(GUMBO_TAG_TBODY, false, 0);
    if (needs_row && html_last_[GUMBO_TAG_TR] <= html_last_[GUMBO_TAG_TABLE]) push(GUMBO_TAG_TR, false, 0);
    if (formatting) {  // Noah's Ark: at most three identical entries after the last marker
        int same = 0;
        auto first = active_.end();
        for (auto it = active_.begin(); it != active_.end(); ++it) {
            if (it->level != markers_ || it->tag != tag || it->attrs != t.attrs_hash) continue;
            if (same++ == 0) first = it;
        }
        if (same >= 3) active_.erase(first);
        active_.push_back({tag, markers_, static_cast<std::int32_t>(stack_.size()), t.attrs_hash, t.end - t.begin});
    }
    push(tag, tag == GUMBO_TAG_SVG || tag == GUMBO_TAG_MATH, t.name);
    if (t.self_closing && (tag == GUMBO_TAG_SVG || tag == GUMBO_TAG_MATH))
        pop_to(static_cast<std::int32_t>(stack_.size()) - 1);
    return Decision::keep;
}

// Reads the tag at `at` ('<' or "</" then a letter) as the HTML tokenizer does (13.2.5.6-13.2.5.40,
// simplified): quoted attribute values may hold '>'. Returns the position after it, or in_.size()
// if the input ends inside the tag (then Gumbo drops the tag).
std::size_t ParserGuard::parse_tag(std::size_t at, bool end_tag, Tag& t) {
    const std::size_t n = in_.size();
    t = Tag{};
    t.begin = at;
    std::size_t i = at + (end_tag ? 2 : 1);
    const std::size_t name_begin = i;
    while (i < n && !is_space(in_[i]) && in_[i] != '/' && in_[i] != '>') ++i;
    t.name_end = i;
    const std::string_view name = in_.substr(name_begin, i - name_begin);
    t.tag = tag_of(name);
    t.name = fnv(name);
    attr_spans_.clear();
    bool slash = false;
    while (i < n) {
        const char c = in_[i];
        if (is_space(c) || c == '/') {
            slash = c == '/';
            ++i;
            continue;
        }
        if (c == '>') {
            t.self_closing = slash;
            t.end = i + 1;
            t.complete = true;
            return t.end;
        }
        slash = false;
        const std::size_t attr_begin = i++;
        while (i < n && !is_space(in_[i]) && in_[i] != '/' && in_[i] != '>' && in_[i] != '=') ++i;
        const std::string_view attr_text = in_.substr(attr_begin, i - attr_begin);
        const std::uint64_t attr_name = fnv(attr_text);
        if (t.tag == GUMBO_TAG_FONT)
            t.font_breakout |= attr_name == fnv("color") || attr_name == fnv("face") || attr_name == fnv("size");
        std::size_t j = i;
        while (j < n && is_space(in_[j])) ++j;
        std::uint64_t value = 0;
        if (j < n && in_[j] == '=') {
            ++j;
            while (j < n && is_space(in_[j])) ++j;
            if (j < n && (in_[j] == '"' || in_[j] == '\'')) {
                const char* close = static_cast<const char*>(std::memchr(in_.data() + j + 1, in_[j], n - j - 1));
                if (!close) return n;
                const std::size_t close_at = static_cast<std::size_t>(close - in_.data());
                value = fnv(in_.substr(j + 1, close_at - j - 1));
                j = close_at + 1;
            } else {
                const std::size_t v = j;
                while (j < n && !is_space(in_[j]) && in_[j] != '>') ++j;
                value = fnv(in_.substr(v, j - v));
            }
            i = j;
        }
        ++t.attr_count;
        t.attrs_hash += attr_name * 31 + value;  // order does not matter (Noah's Ark compares sets)
        if (t.attr_count <= kMaxAttributes) attr_spans_.emplace_back(attr_begin, i);
    }
    return n;
}

// Where RAWTEXT/RCDATA content that started at `from` ends: at "</name" followed by a space, '/'
// or '>' (script's escape states are not modelled: a mistake only moves text around).
std::size_t ParserGuard::skip_raw(std::size_t from, std::string_view name) const {
    const std::size_t n = in_.size();
    for (std::size_t i = from; i + 2 + name.size() <= n;) {
        const char* lt = static_cast<const char*>(std::memchr(in_.data() + i, '<', n - i));
        if (!lt) break;
        i = static_cast<std::size_t>(lt - in_.data());
        if (i + 2 + name.size() > n) break;
        if (in_[i + 1] == '/') {
            bool same = true;
            for (std::size_t k = 0; k < name.size() && same; ++k) same = lower(in_[i + 2 + k]) == lower(name[k]);
            const std::size_t after = i + 2 + name.size();
            if (same && (after == n || is_space(in_[after]) || in_[after] == '/' || in_[after] == '>')) return i;
        }
        ++i;
    }
    return n;
}

void ParserGuard::leave_out(std::size_t begin, std::size_t end) {
    if (!rewriting_) {
        rewriting_ = true;
        rewritten_.reserve(in_.size());
    }
    rewritten_.append(in_.substr(copied_, begin - copied_));
    copied_ = end;
}

void ParserGuard::rewrite_attributes(const Tag& t) {
    leave_out(t.begin, t.end);
    rewritten_.append(in_.substr(t.begin, t.name_end - t.begin));
    for (auto [b, e] : attr_spans_) {
        rewritten_ += ' ';
        rewritten_.append(in_.substr(b, e - b));
    }
    rewritten_ += t.self_closing ? " />" : ">";
}

bool ParserGuard::text(std::size_t begin, std::size_t end) {
    if (begin >= end) return true;
    const std::uint64_t per_byte = kTextCost + text_scan() / 2;
    const std::uint64_t left = spent_ >= kBudget ? 0 : (kBudget - spent_) / per_byte;
    if (end - begin > left) {  // cut inside the text, on a UTF-8 boundary
        std::size_t cut = begin + static_cast<std::size_t>(left);
        while (cut > begin && (static_cast<unsigned char>(in_[cut]) & 0xC0) == 0x80) --cut;
        leave_out(cut, in_.size());
        truncated_ = true;
        return false;
    }
    spent_ += per_byte * (end - begin);
    if (html_context()) reconstruct();
    return true;
}

std::string_view ParserGuard::run() {
    const std::size_t n = in_.size();
    std::size_t pos = 0;
    Tag t;
    auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    while (pos < n) {
        const char* lt = static_cast<const char*>(std::memchr(in_.data() + pos, '<', n - pos));
        const std::size_t at = lt ? static_cast<std::size_t>(lt - in_.data()) : n;
        if (!text(pos, at) || at + 1 >= n) break;
        const char c = in_[at + 1];
        enum class Kind { text, comment, start, end } kind = Kind::text;
        if (alpha(c)) kind = Kind::start;
        else if (c == '/' && at + 2 < n && alpha(in_[at + 2])) kind = Kind::end;
        else if (c == '!' || c == '?' || c == '/') kind = Kind::comment;
        std::size_t next = at + 1;
        std::uint64_t cost = kTagCost;
        if (kind == Kind::comment) {  // comment, doctype, CDATA, bogus comment: never rendered
            std::string_view close = ">";
            std::size_t from = at + 2;
            if (in_.compare(at, 4, "<!--") == 0) {
                close = "-->";
                from = at + 4;
                if (in_.compare(from, 1, ">") == 0 || in_.compare(from, 2, "->") == 0) close = ">";
            } else if (!html_context() && in_.compare(at, 9, "<![CDATA[") == 0) {
                close = "]]>";
                from = at + 9;
            }
            const std::size_t e = in_.find(close, std::min(from, n));
            next = e == std::string_view::npos ? n : e + close.size();
            cost += kTextCost * (next - at);
        } else if (kind != Kind::text) {
            next = parse_tag(at, kind == Kind::end, t);
            if (!t.complete) break;  // Gumbo drops a tag cut by the end of input
            const std::uint64_t kept = std::min(t.attr_count, kMaxAttributes);
            cost += kDepthCost * depth() + kAttributeCost * t.attr_count + 4 * kept * kept;
        } else {
            cost = kTextCost;  // a '<' that starts no markup is text
        }
        if (!charge(cost)) {
            leave_out(at, n);
            truncated_ = true;
            break;
        }
        if (kind == Kind::start) {
            const bool raw = html_context() && ((tag_flags().html[t.tag] & kRawText) || t.tag == GUMBO_TAG_PLAINTEXT);
            const Decision d = start_tag(t);
            if (d == Decision::leave_out) {
                leave_out(t.begin, t.end);
                ++left_out_;
                ++left_open_[t.tag];
            } else if (d == Decision::merge) {
                leave_out(t.begin, t.end);
            } else if (t.attr_count > kMaxAttributes) {
                rewrite_attributes(t);
            }
            if (raw && d == Decision::keep) {
                const std::size_t raw_end =
                    t.tag == GUMBO_TAG_PLAINTEXT ? n : skip_raw(next, in_.substr(at + 1, t.name_end - at - 1));
                if (!charge(kTextCost * (raw_end - next))) {
                    leave_out(next, n);
                    truncated_ = true;
                    break;
                }
                next = raw_end;
            }
        } else if (kind == Kind::end) {
            if (!end_tag(t)) leave_out(t.begin, t.end);
        }
        pos = next;
    }
    if (!rewriting_) return in_;
    if (!truncated_) rewritten_.append(in_.substr(copied_));
    return rewritten_;
}

// ---------------------------------------------------------------------------------------------
// The allow-lists. Elements: what an e-mail body needs for text formatting, lists, tables and
// images, and nothing that runs code, loads resources by itself, takes input, navigates or embeds
// other documents. Elements whose content is code, data, fallback or UI for a removed feature are
// dropped with their content; anything else unknown is unwrapped (its text stays visible).

enum class Action : std::uint8_t { unwrap, keep, drop };

Action element_action(const GumboNode* node) {
    if (node->type == GUMBO_NODE_TEMPLATE) return Action::drop;
    const GumboElement& e = node->v.element;
    if (e.tag_namespace != GUMBO_NAMESPACE_HTML) return Action::drop;  // svg/math content
    switch (e.tag) {
        case GUMBO_TAG_P: case GUMBO_TAG_BR: case GUMBO_TAG_DIV: case GUMBO_TAG_SPAN:
        case GUMBO_TAG_B: case GUMBO_TAG_STRONG: case GUMBO_TAG_I: case GUMBO_TAG_EM:
        case GUMBO_TAG_U: case GUMBO_TAG_S: case GUMBO_TAG_SMALL: case GUMBO_TAG_SUB:
        case GUMBO_TAG_SUP: case GUMBO_TAG_BLOCKQUOTE: case GUMBO_TAG_PRE: case GUMBO_TAG_CODE:
        case GUMBO_TAG_HR: case GUMBO_TAG_H1: case GUMBO_TAG_H2: case GUMBO_TAG_H3:
        case GUMBO_TAG_H4: case GUMBO_TAG_H5: case GUMBO_TAG_H6: case GUMBO_TAG_UL:
        case GUMBO_TAG_OL: case GUMBO_TAG_LI: case GUMBO_TAG_DL: case GUMBO_TAG_DT:
        case GUMBO_TAG_DD: case GUMBO_TAG_TABLE: case GUMBO_TAG_THEAD: case GUMBO_TAG_TBODY:
        case GUMBO_TAG_TFOOT: case GUMBO_TAG_TR: case GUMBO_TAG_TD: case GUMBO_TAG_TH:
        case GUMBO_TAG_CAPTION: case GUMBO_TAG_COLGROUP: case GUMBO_TAG_COL: case GUMBO_TAG_A:
        case GUMBO_TAG_IMG: case GUMBO_TAG_FONT: case GUMBO_TAG_CENTER: case GUMBO_TAG_ABBR:
        case GUMBO_TAG_ADDRESS: case GUMBO_TAG_CITE: case GUMBO_TAG_Q: case GUMBO_TAG_DEL:
        case GUMBO_TAG_INS: case GUMBO_TAG_MARK: case GUMBO_TAG_FIGURE: case GUMBO_TAG_FIGCAPTION:
            return Action::keep;
        case GUMBO_TAG_SCRIPT: case GUMBO_TAG_STYLE: case GUMBO_TAG_NOSCRIPT: case GUMBO_TAG_TEMPLATE:
        case GUMBO_TAG_IFRAME: case GUMBO_TAG_FRAME: case GUMBO_TAG_FRAMESET: case GUMBO_TAG_NOFRAMES:
        case GUMBO_TAG_NOEMBED: case GUMBO_TAG_OBJECT: case GUMBO_TAG_EMBED: case GUMBO_TAG_APPLET:
        case GUMBO_TAG_PARAM: case GUMBO_TAG_SVG: case GUMBO_TAG_MATH: case GUMBO_TAG_FORM:
        case GUMBO_TAG_INPUT: case GUMBO_TAG_BUTTON: case GUMBO_TAG_SELECT: case GUMBO_TAG_OPTION:
        case GUMBO_TAG_OPTGROUP: case GUMBO_TAG_DATALIST: case GUMBO_TAG_TEXTAREA:
        case GUMBO_TAG_KEYGEN: case GUMBO_TAG_ISINDEX: case GUMBO_TAG_LINK: case GUMBO_TAG_META:
        case GUMBO_TAG_BASE: case GUMBO_TAG_TITLE: case GUMBO_TAG_HEAD: case GUMBO_TAG_AUDIO:
        case GUMBO_TAG_VIDEO: case GUMBO_TAG_SOURCE: case GUMBO_TAG_TRACK: case GUMBO_TAG_CANVAS:
        case GUMBO_TAG_AREA: case GUMBO_TAG_BGSOUND: case GUMBO_TAG_MENUITEM: case GUMBO_TAG_XMP:
            return Action::drop;
        case GUMBO_TAG_UNKNOWN: {  // Gumbo 0.10 has no enum for these: compare the source name
            GumboStringPiece name = e.original_tag;
            if (name.data == nullptr || name.length < 2) return Action::unwrap;
            gumbo_tag_from_original_text(&name);
            std::string lowered(name.data, name.length);
            for (char& c : lowered) c = lower(c);
            return (lowered == "portal" || lowered == "dialog" || lowered == "fencedframe")
                       ? Action::drop : Action::unwrap;
        }
        default:
            return Action::unwrap;
    }
}

bool is_void(GumboTag tag) {
    return tag == GUMBO_TAG_BR || tag == GUMBO_TAG_HR || tag == GUMBO_TAG_IMG || tag == GUMBO_TAG_COL;
}

// Attributes, by the check their value must pass. Not kept anywhere: on* (script), id and name
// (DOM clobbering of the portal's own scripts if the fragment ever leaves the sandbox), class
// (no stylesheet survives, and it could pick up the portal's own CSS), srcset, background,
// formaction, action, ping, dynsrc, lowsrc, xlink:href (URLs this filter does not check), data-*,
// target and rel (set by us on links).
enum class Check : std::uint8_t {
    none, text, dir, lang, length, integer, color, face, align, valign, list_type, href, src, style
};

bool any_of(GumboTag tag, std::initializer_list<GumboTag> tags) {
    return std::find(tags.begin(), tags.end(), tag) != tags.end();
}

Check attribute_check(GumboTag tag, std::string_view name) {
    const bool cell = any_of(tag, {GUMBO_TAG_TD, GUMBO_TAG_TH});
    const bool rows = any_of(tag, {GUMBO_TAG_TR, GUMBO_TAG_THEAD, GUMBO_TAG_TBODY, GUMBO_TAG_TFOOT});
    const bool cols = any_of(tag, {GUMBO_TAG_COL, GUMBO_TAG_COLGROUP});
    if (name == "title") return Check::text;
    if (name == "dir") return Check::dir;
    if (name == "lang") return Check::lang;
    if (name == "style") return Check::style;
    if (name == "href") return tag == GUMBO_TAG_A ? Check::href : Check::none;
    if (name == "src") return tag == GUMBO_TAG_IMG ? Check::src : Check::none;
    if (name == "alt") return tag == GUMBO_TAG_IMG ? Check::text : Check::none;
    if (name == "width")
        return (tag == GUMBO_TAG_IMG || tag == GUMBO_TAG_TABLE || tag == GUMBO_TAG_HR || cell || cols)
                   ? Check::length : Check::none;
    if (name == "height")
        return (tag == GUMBO_TAG_IMG || tag == GUMBO_TAG_TABLE || tag == GUMBO_TAG_TR || cell) ? Check::length
                                                                                             : Check::none;
    if (name == "border") return any_of(tag, {GUMBO_TAG_IMG, GUMBO_TAG_TABLE}) ? Check::length : Check::none;
    if (name == "cellpadding" || name == "cellspacing")
        return tag == GUMBO_TAG_TABLE ? Check::length : Check::none;
    if (name == "colspan" || name == "rowspan") return cell ? Check::integer : Check::none;
    if (name == "span") return cols ? Check::integer : Check::none;
    if (name == "align")
        return (cell || rows || cols ||
                any_of(tag, {GUMBO_TAG_P, GUMBO_TAG_DIV, GUMBO_TAG_H1, GUMBO_TAG_H2, GUMBO_TAG_H3,
                             GUMBO_TAG_H4, GUMBO_TAG_H5, GUMBO_TAG_H6, GUMBO_TAG_TABLE,
                             GUMBO_TAG_CAPTION, GUMBO_TAG_IMG, GUMBO_TAG_HR}))
                   ? Check::align : Check::none;
    if (name == "valign") return (cell || rows || cols) ? Check::valign : Check::none;
    if (name == "bgcolor") return (cell || rows || tag == GUMBO_TAG_TABLE) ? Check::color : Check::none;
    if (name == "color") return any_of(tag, {GUMBO_TAG_FONT, GUMBO_TAG_HR}) ? Check::color : Check::none;
    if (name == "face") return tag == GUMBO_TAG_FONT ? Check::face : Check::none;
    if (name == "size")
        return tag == GUMBO_TAG_FONT ? Check::integer : tag == GUMBO_TAG_HR ? Check::length : Check::none;
    if (name == "start") return tag == GUMBO_TAG_OL ? Check::integer : Check::none;
    if (name == "type") return any_of(tag, {GUMBO_TAG_OL, GUMBO_TAG_UL, GUMBO_TAG_LI}) ? Check::list_type : Check::none;
    return Check::none;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

std::string lowered(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

bool one_of(std::string_view value, std::initializer_list<std::string_view> words) {
    return std::find(words.begin(), words.end(), value) != words.end();
}

// 1-5 digits, optional 1-3 decimals, optional % or px.
bool valid_length(std::string_view v) {
    std::size_t i = 0;
    while (i < v.size() && is_digit(v[i])) ++i;
    if (i == 0 || i > 5) return false;
    if (i < v.size() && v[i] == '.') {
        const std::size_t d = ++i;
        while (i < v.size() && is_digit(v[i])) ++i;
        if (i == d || i - d > 3) return false;
    }
    const std::string_view unit = v.substr(i);
    return unit.empty() || unit == "%" || unit == "px";
}

bool valid_integer(std::string_view v) {
    if (!v.empty() && (v[0] == '+' || v[0] == '-')) v.remove_prefix(1);
    return !v.empty() && v.size() <= 5 && std::all_of(v.begin(), v.end(), is_digit);
}

bool valid_color(std::string_view v) {
    if (!v.empty() && v[0] == '#') {
        v.remove_prefix(1);
        return v.size() >= 3 && v.size() <= 8 && std::all_of(v.begin(), v.end(), is_hex);
    }
    return !v.empty() && v.size() <= 30 &&
           (std::all_of(v.begin(), v.end(), is_alpha) ||
            (v.size() == 6 && std::all_of(v.begin(), v.end(), is_hex)));
}

// Font family names: letters, digits, spaces, , - _ . ' " and any non-ASCII (e.g. CJK names).
bool valid_face(std::string_view v) {
    return !v.empty() && v.size() <= 200 && std::all_of(v.begin(), v.end(), [](char c) {
        return static_cast<unsigned char>(c) >= 0x80 || is_alpha(c) || is_digit(c) ||
               std::strchr(" ,-_.'\"", c) != nullptr;
    });
}

// WHATWG URL parsing, the part that matters for the scheme: strip leading and trailing C0 controls
// and spaces, remove every tab and newline (entities were already decoded by the parser).
std::string normalize_url(std::string_view raw) {
    auto c0 = [](char c) { return static_cast<unsigned char>(c) <= 0x20; };
    while (!raw.empty() && c0(raw.front())) raw.remove_prefix(1);
    while (!raw.empty() && c0(raw.back())) raw.remove_suffix(1);
    std::string url;
    url.reserve(raw.size());
    for (char c : raw)
        if (c != '\t' && c != '\n' && c != '\r') url += c;
    return url;
}

// The scheme in lower case (RFC 3986 3.1), or "" for a relative reference.
std::string scheme_of(std::string_view url) {
    if (url.empty() || !is_alpha(url[0])) return {};
    for (std::size_t i = 1; i < url.size(); ++i) {
        const char c = url[i];
        if (c == ':') return lowered(url.substr(0, i));
        if (!(is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.')) return {};
    }
    return {};
}

// "//host..." with a host (browsers treat '\' as '/' in http(s) URLs).
bool has_authority(std::string_view rest) {
    auto slash = [](char c) { return c == '/' || c == '\\'; };
    return rest.size() > 2 && slash(rest[0]) && slash(rest[1]) && !slash(rest[2]) && rest[2] != '?' &&
           rest[2] != '#' && rest[2] != '@';
}

// http(s) with a host, or mailto; anything relative has no meaning without a base and is dropped.
bool safe_href(std::string_view raw, std::string& out) {
    const std::string url = normalize_url(raw);
    const std::string scheme = scheme_of(url);
    const std::string_view rest = std::string_view(url).substr(scheme.size() + (scheme.empty() ? 0 : 1));
    if (scheme == "mailto" || ((scheme == "http" || scheme == "https") && has_authority(rest))) {
        out = scheme + ":" + std::string(rest);
        return true;
    }
    return false;
}

enum class Image : std::uint8_t { keep, remote, refused };

// data: images of raster types in base64 (RFC 2397; no SVG, it can hold script), cid: parts
// (RFC 2392), and remote images only when allowed.
Image safe_src(std::string_view raw, bool allow_remote, std::string& out) {
    const std::string url = normalize_url(raw);
    const std::string scheme = scheme_of(url);
    if (scheme == "data") {
        const std::string head = lowered(std::string_view(url).substr(0, 30));
        for (std::string_view type : {"data:image/png;base64,", "data:image/gif;base64,",
                                      "data:image/jpeg;base64,", "data:image/webp;base64,"}) {
            if (head.compare(0, type.size(), type) != 0) continue;
            const std::string_view body = std::string_view(url).substr(type.size());
            const bool base64 = !body.empty() && std::all_of(body.begin(), body.end(), [](char c) {
                return is_alpha(c) || is_digit(c) || c == '+' || c == '/' || c == '=';
            });
            if (!base64) return Image::refused;
            out = std::string(type) + std::string(body);
            return Image::keep;
        }
        return Image::refused;
    }
    if (scheme == "cid" && url.size() > 4) {
        out = "cid:" + url.substr(4);
        return Image::keep;
    }
    const std::string_view rest = std::string_view(url).substr(scheme.size() + (scheme.empty() ? 0 : 1));
    const bool web = (scheme == "http" || scheme == "https") && has_authority(rest);
    const bool relative_to_scheme = scheme.empty() && has_authority(url);
    if (!web && !relative_to_scheme) return Image::refused;
    if (!allow_remote) return Image::remote;
    out = (web ? scheme + ":" : std::string("https:")) + std::string(rest);
    return Image::keep;
}

// CSS (CSS Syntax Level 3 declarations, without escapes or comments): only listed properties, and
// values made of a small character set with no function but rgb/rgba/hsl/hsla. That excludes
// url(), image-set(), expression(), var(), attr(), escapes, comments and at-rules by construction;
// the explicit word list below is a second check. Dropping a harmless declaration is acceptable.
bool allowed_property(std::string_view p) {
    static constexpr std::string_view kExact[] = {
        "color", "background-color", "text-align", "text-decoration", "text-decoration-line",
        "text-decoration-color", "text-decoration-style", "line-height", "width", "height",
        "max-width", "vertical-align", "white-space", "list-style-type", "display"};
    if (std::find(std::begin(kExact), std::end(kExact), p) != std::end(kExact)) return true;
    if (p.starts_with("border-image")) return false;  // loads images
    return p == "font" || p.starts_with("font-") || p.starts_with("margin") || p.starts_with("padding") ||
           p.starts_with("border");
}

bool allowed_value(std::string_view property, std::string_view v) {
    if (v.empty() || v.size() > 512) return false;
    char quote = 0;
    int parens = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const char c = v[i];
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x80) {
            if (u == 0xC2 && i + 1 < v.size() && static_cast<unsigned char>(v[i + 1]) < 0xA0) return false;  // C1
            continue;
        }
        if (quote) {
            if (c == quote) quote = 0;
            else if (!(is_alpha(c) || is_digit(c) || std::strchr(" ,-_.", c))) return false;
            continue;
        }
        if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '(') {
            std::size_t b = i;
            while (b > 0 && (is_alpha(v[b - 1]) || v[b - 1] == '-')) --b;
            if (!one_of(lowered(v.substr(b, i - b)), {"rgb", "rgba", "hsl", "hsla"})) return false;
            ++parens;
        } else if (c == ')') {
            if (--parens < 0) return false;
        } else if (!(is_alpha(c) || is_digit(c) || std::strchr(" #%.,-+!/_", c))) {
            return false;
        }
    }
    if (quote || parens != 0) return false;
    const std::string low = lowered(v);
    for (std::string_view bad : {"url", "expression", "javascript", "vbscript", "@import", "\\", "/*", "<",
                                 "behavior", "-moz-binding", "image", "attr", "var"})
        if (low.find(bad) != std::string::npos && (bad.size() > 3 || low.find(std::string(bad) + "(") != std::string::npos))
            return false;
    if (property == "display")
        return one_of(low, {"none", "block", "inline", "inline-block", "table", "table-row", "table-cell",
                            "list-item"});
    if (property == "white-space") return one_of(low, {"normal", "nowrap", "pre", "pre-wrap", "pre-line"});
    return true;
}

std::string filter_style(std::string_view css, bool& changed) {
    std::string out;
    std::size_t begin = 0;
    char quote = 0;
    for (std::size_t i = 0; i <= css.size(); ++i) {
        if (i < css.size()) {
            const char c = css[i];
            if (quote) {
                if (c == quote) quote = 0;
                continue;
            }
            if (c == '"' || c == '\'') quote = c;
            if (c != ';') continue;
        }
        const std::string_view decl = trim(css.substr(begin, i - begin));
        begin = i + 1;
        if (decl.empty()) continue;
        const std::size_t colon = decl.find(':');
        const std::string name = colon == std::string_view::npos ? std::string() : lowered(trim(decl.substr(0, colon)));
        const std::string_view value = colon == std::string_view::npos ? std::string_view() : trim(decl.substr(colon + 1));
        const bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return is_alpha(c) || c == '-'; });
        if (!name_ok || !allowed_property(name) || !allowed_value(name, value)) {
            changed = true;
            continue;
        }
        if (!out.empty()) out += "; ";
        out += name;
        out += ": ";
        out += value;
    }
    return out;
}

std::string_view attribute_value(const GumboAttribute* a) { return a->value ? std::string_view(a->value) : std::string_view(); }

// ---------------------------------------------------------------------------------------------
// Writer: an iterative walk over Gumbo's tree (no recursion, so no stack limit) that writes the
// allowed subset as HTML (WHATWG HTML 13.3 serialisation, with every attribute double-quoted and
// & < > " escaped everywhere, and invalid UTF-8 or NUL replaced by U+FFFD).

class Writer {
  public:
    explicit Writer(const SanitizeOptions& options) : options_(options) {}
    void document(const GumboNode* root);
    Sanitized finish() && { return {std::move(out_), report_}; }
    SanitizeReport& report() { return report_; }

  private:
    void walk(const GumboNode* parent);
    const char* start_tag(const GumboNode* node);  // the end tag's name, or nullptr (unwrapped)
    bool escape(std::string_view s, std::string& to, std::size_t limit);
    void stop() {
        stopped_ = true;
        report_.truncated = true;
    }

    const SanitizeOptions& options_;
    std::string out_;
    std::string tag_;    // the start tag being built
    std::string value_;  // a checked attribute value
    SanitizeReport report_;
    bool stopped_ = false;
};

bool Writer::escape(std::string_view s, std::string& to, std::size_t limit) {
    static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
    for (std::size_t i = 0; i < s.size();) {
        if (to.size() >= limit) return false;
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
                case '&': to += "&amp;"; break;
                case '<': to += "&lt;"; break;
                case '>': to += "&gt;"; break;
                case '"': to += "&quot;"; break;
                case 0: to += kReplacement; break;
                default: to += static_cast<char>(c);
            }
            ++i;
            continue;
        }
        // RFC 3629: the shortest form, no surrogates, at most U+10FFFF.
        std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (c > 0xF4 || i + len > s.size()) len = 0;
        for (std::size_t k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) len = 0;
        if (len >= 3) {
            const auto c1 = static_cast<unsigned char>(s[i + 1]);
            if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) ||
                (c == 0xF4 && c1 >= 0x90))
                len = 0;
        }
        if (len == 0) {
            to += kReplacement;
            ++i;
        } else {
            to.append(s.substr(i, len));
            i += len;
        }
    }
    return true;
}

const char* Writer::start_tag(const GumboNode* node) {
    const GumboElement& e = node->v.element;
    const char* name = gumbo_normalized_tagname(e.tag);
    tag_.assign("<").append(name);
    bool has_href = false;
    for (unsigned i = 0; i < e.attributes.length; ++i) {
        const auto* a = static_cast<const GumboAttribute*>(e.attributes.data[i]);
        const std::string_view attr = a->name ? a->name : "";
        const std::string_view raw = attribute_value(a);
        const Check check = a->attr_namespace == GUMBO_ATTR_NAMESPACE_NONE ? attribute_check(e.tag, attr) : Check::none;
        const std::string_view v = trim(raw);
        bool ok = true;
        bool changed = false;
        switch (check) {
            case Check::none: ok = false; break;
            case Check::text: value_.assign(raw); break;
            case Check::dir: value_ = lowered(v); ok = one_of(value_, {"ltr", "rtl", "auto"}); break;
            case Check::lang:
                value_.assign(v);
                ok = !v.empty() && v.size() <= 35 &&
                     std::all_of(v.begin(), v.end(), [](char c) { return is_alpha(c) || is_digit(c) || c == '-'; });
                break;
            case Check::length: value_ = lowered(v); ok = valid_length(value_); break;
            case Check::integer: value_.assign(v); ok = valid_integer(v); break;
            case Check::color: value_.assign(v); ok = valid_color(v); break;
            case Check::face: value_.assign(v); ok = valid_face(v); break;
            case Check::align:
                value_ = lowered(v);
                ok = one_of(value_, {"left", "right", "center", "justify", "top", "middle", "bottom", "baseline"});
                break;
            case Check::valign: value_ = lowered(v); ok = one_of(value_, {"top", "middle", "bottom", "baseline"}); break;
            case Check::list_type:
                value_.assign(v);
                if (e.tag != GUMBO_TAG_UL && one_of(v, {"1", "a", "A", "i", "I"})) break;
                value_ = lowered(v);
                ok = e.tag != GUMBO_TAG_OL && one_of(value_, {"disc", "circle", "square"});
                break;
            case Check::href: ok = has_href = safe_href(raw, value_); break;
            case Check::src:
                switch (safe_src(raw, options_.allow_remote_images, value_)) {
                    case Image::keep: ok = value_.size() <= options_.max_output / 2; break;
                    case Image::remote: ++report_.blocked_images; continue;
                    case Image::refused: ok = false; break;
                }
                break;
            case Check::style: value_ = filter_style(raw, changed); ok = !value_.empty(); break;
        }
        if (!ok) {
            ++report_.removed_attributes;
            continue;
        }
        tag_.append(" ").append(attr).append("=\"");
        escape(value_, tag_, std::string::npos);
        tag_ += '"';
    }
    if (e.tag == GUMBO_TAG_A) {
        if (!has_href) return nullptr;  // a link to nowhere: keep only its text
        tag_ += " rel=\"noopener noreferrer\" target=\"_blank\"";
    }
    tag_ += '>';
    if (out_.size() + tag_.size() > options_.max_output) {
        stop();
        return nullptr;
    }
    out_ += tag_;
    if (e.tag == GUMBO_TAG_PRE && e.children.length > 0) {  // the parser drops one leading newline
        const auto* first = static_cast<const GumboNode*>(e.children.data[0]);
        if ((first->type == GUMBO_NODE_TEXT || first->type == GUMBO_NODE_WHITESPACE) && first->v.text.text[0] == '\n')
            out_ += '\n';
    }
    return name;
}

void Writer::walk(const GumboNode* parent) {
    struct Frame {
        const GumboNode* node;
        unsigned next;
        const char* close;  // end tag to write when leaving, nullptr if the element was not written
    };
    std::vector<Frame> stack{{parent, 0, nullptr}};
    std::size_t open = 0;  // elements written and not yet closed
    while (!stack.empty()) {
        Frame& frame = stack.back();
        const GumboVector& children = frame.node->v.element.children;
        if (stopped_ || frame.next >= children.length) {
            if (frame.close) {
                out_.append("</").append(frame.close).append(">");
                --open;
            }
            stack.pop_back();
            continue;
        }
        const auto* child = static_cast<const GumboNode*>(children.data[frame.next++]);
        switch (child->type) {
            case GUMBO_NODE_TEXT:
            case GUMBO_NODE_WHITESPACE:
                if (!escape(child->v.text.text, out_, options_.max_output)) stop();
                break;
            case GUMBO_NODE_ELEMENT:
            case GUMBO_NODE_TEMPLATE: {
                const Action action = element_action(child);
                if (action == Action::drop) {
                    ++report_.removed_elements;
                    break;
                }
                const char* close = nullptr;
                if (action == Action::keep && open < options_.max_depth) close = start_tag(child);
                if (!close && !stopped_) ++report_.removed_elements;
                if (stopped_ || (close && is_void(child->v.element.tag))) break;
                if (close) ++open;
                stack.push_back({child, 0, close});
                break;
            }
            default:  // comments, CDATA: never written
                break;
        }
    }
}

void Writer::document(const GumboNode* root) {
    if (!root || root->type != GUMBO_NODE_ELEMENT) return;
    const GumboVector& children = root->v.element.children;
    for (unsigned i = 0; i < children.length; ++i) {
        const auto* child = static_cast<const GumboNode*>(children.data[i]);
        if (child->type != GUMBO_NODE_ELEMENT) continue;
        if (child->v.element.tag == GUMBO_TAG_BODY) {
            walk(child);
        } else {  // head (its children are all dropped) or frameset
            const GumboVector& head = child->v.element.children;
            for (unsigned k = 0; k < head.length; ++k)
                report_.removed_elements += static_cast<const GumboNode*>(head.data[k])->type == GUMBO_NODE_ELEMENT;
            if (child->v.element.tag != GUMBO_TAG_HEAD) ++report_.removed_elements;
        }
    }
}

struct OutputDeleter {
    void operator()(GumboOutput* output) const { gumbo_destroy_output(&kGumboDefaultOptions, output); }
};

}  // namespace

Sanitized sanitize_html(std::string_view html, const SanitizeOptions& options) {
    // The guard's depth cap leaves room above max_depth for misnested markup that Gumbo closes
    // implicitly; the Writer then flattens at max_depth exactly.
    ParserGuard guard(html, std::min<std::size_t>(options.max_depth, 256) + 256);
    const std::string_view input = guard.run();
    GumboOptions gumbo_options = kGumboDefaultOptions;
    gumbo_options.max_errors = 0;  // errors are not used: do not collect them
    const std::unique_ptr<GumboOutput, OutputDeleter> parsed(
        gumbo_parse_with_options(&gumbo_options, input.data(), input.size()));
    Writer writer(options);
    if (parsed) writer.document(parsed->root);
    writer.report().removed_elements += guard.left_out();
    if (guard.truncated()) writer.report().truncated = true;
    return std::move(writer).finish();
}

}  // namespace gumbo_allowlist
}  // namespace mailward::portal
