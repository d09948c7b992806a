// See metrics.hpp. The table is open addressing over (name, label set): a slot is claimed once
// with a compare-and-swap on its state (free -> writing -> ready) and never freed, so readers need
// no lock and a process that dies mid-claim costs one slot at most. Values are std::atomic_ref
// over plain integers in the shared mapping (lock-free on every platform we build for).
#include "common/metrics.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace mailward::common::metrics {
namespace {

constexpr std::size_t kNameMax = 96;
constexpr std::size_t kLabelsMax = 256;
constexpr std::size_t kHelpMax = 160;
constexpr std::size_t kBucketCount = std::size(kBuckets) + 1;  // and +Inf
constexpr std::size_t kValues = kBucketCount + 1;              // histograms: buckets, sum (ns)

enum Kind : std::uint32_t { kCounter = 1, kHistogram = 2 };
enum State : std::uint32_t { kFree = 0, kWriting = 1, kReady = 2 };

struct Slot {
    std::uint32_t state;
    std::uint32_t kind;
    char name[kNameMax];
    char labels[kLabelsMax];  // the rendered label set: "" or {k="v",...}
    char help[kHelpMax];
    std::uint64_t v[kValues];  // counter: v[0]; histogram: per-bucket counts (not cumulative), sum in ns
};

struct Table {
    std::uint64_t dropped;
    Slot slots[kCapacity];
};

static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free);

Table* map_table() {
    void* p = ::mmap(nullptr, sizeof(Table), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;  // metrics are not worth failing for: nothing is counted
    return static_cast<Table*>(p);        // zero-filled: every slot free
}

Table* table() {
    static Table* t = map_table();
    return t;
}

std::mutex& collector_mu() {
    static std::mutex m;
    return m;
}
std::function<std::string()>& collector() {
    static std::function<std::string()> c;
    return c;
}

std::uint64_t hash(std::string_view a, std::string_view b) {
    std::uint64_t h = 1469598103934665603ull;
    for (char c : a) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;
    for (char c : b) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return h;
}

void copy(char* dst, std::size_t cap, std::string_view src) {
    const std::size_t n = std::min(src.size(), cap - 1);
    std::memcpy(dst, src.data(), n);
    dst[n] = '\0';
}

std::string label_set(Labels labels) {
    std::string out;
    for (const auto& [k, v] : labels) {
        if (k.empty()) continue;
        out += out.empty() ? "{" : ",";
        out += k;
        out += "=\"";
        out += escape(v, true);
        out += '"';
    }
    if (!out.empty()) out += '}';
    return out;
}

void count_drop() {
    if (auto* t = table()) std::atomic_ref(t->dropped).fetch_add(1, std::memory_order_relaxed);
}

// The slot of (name, labels): found, or claimed when create; nullptr when absent, of another kind,
// too long or the table is full.
Slot* find(Kind kind, std::string_view name, const std::string& labels, std::string_view help, bool create) {
    Table* t = table();
    if (!t) return nullptr;
    if (name.size() >= kNameMax || labels.size() >= kLabelsMax) {
        if (create) count_drop();
        return nullptr;
    }
    const std::size_t start = hash(name, labels) % kCapacity;
    for (std::size_t i = 0; i < kCapacity; ++i) {
        Slot& s = t->slots[(start + i) % kCapacity];
        std::atomic_ref state(s.state);
        std::uint32_t st = state.load(std::memory_order_acquire);
        if (st == kFree) {
            if (!create) return nullptr;  // claimed slots are never freed: the probe ends here
            std::uint32_t expected = kFree;
            if (state.compare_exchange_strong(expected, kWriting, std::memory_order_acq_rel)) {
                s.kind = kind;
                copy(s.name, kNameMax, name);
                copy(s.labels, kLabelsMax, labels);
                copy(s.help, kHelpMax, help);
                state.store(kReady, std::memory_order_release);
                return &s;
            }
            st = expected;
        }
        // Another thread or process is writing this slot's key: a moment, then look again.
        for (int spin = 0; st == kWriting && spin < 10000; ++spin) {
            std::this_thread::yield();
            st = state.load(std::memory_order_acquire);
        }
        if (st != kReady) continue;  // its writer died mid-claim: the slot is lost, probe on
        if (name == s.name && labels == s.labels) return s.kind == kind ? &s : nullptr;
    }
    if (create) count_drop();
    return nullptr;
}

std::string format_double(double d) {
    if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", d);
}

std::string with_le(const std::string& labels, std::string_view le) {
    if (labels.empty()) return "{le=\"" + std::string(le) + "\"}";
    return labels.substr(0, labels.size() - 1) + ",le=\"" + std::string(le) + "\"}";
}

}  // namespace

void share_with_children() { (void)table(); }

std::string escape(std::string_view text, bool quote) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\') out += "\\\\";
        else if (c == '"' && quote) out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

void inc(std::string_view name, std::string_view help, std::string_view label, std::string_view value,
         std::uint64_t n) {
    add(name, help, {{label, value}}, n);
}

void add(std::string_view name, std::string_view help, Labels labels, std::uint64_t n) {
    if (Slot* s = find(kCounter, name, label_set(labels), help, true))
        std::atomic_ref(s->v[0]).fetch_add(n, std::memory_order_relaxed);
}

void observe(std::string_view name, std::string_view help, Labels labels, double seconds) {
    Slot* s = find(kHistogram, name, label_set(labels), help, true);
    if (!s) return;
    if (!(seconds > 0)) seconds = 0;  // NaN too
    std::size_t b = 0;
    while (b < std::size(kBuckets) && seconds > kBuckets[b]) ++b;
    std::atomic_ref(s->v[b]).fetch_add(1, std::memory_order_relaxed);
    const double ns = std::min(seconds * 1e9, 1e18);
    std::atomic_ref(s->v[kBucketCount]).fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

std::uint64_t value(std::string_view name, std::string_view label, std::string_view v) {
    return value(name, {{label, v}});
}

std::uint64_t value(std::string_view name, Labels labels) {
    const std::string ls = label_set(labels);
    for (Kind k : {kCounter, kHistogram}) {
        const Slot* s = find(k, name, ls, {}, false);
        if (!s) continue;
        if (k == kCounter) return std::atomic_ref(const_cast<Slot*>(s)->v[0]).load(std::memory_order_relaxed);
        std::uint64_t count = 0;
        for (std::size_t b = 0; b < kBucketCount; ++b)
            count += std::atomic_ref(const_cast<Slot*>(s)->v[b]).load(std::memory_order_relaxed);
        return count;
    }
    return 0;
}

std::uint64_t dropped() {
    Table* t = table();
    return t ? std::atomic_ref(t->dropped).load(std::memory_order_relaxed) : 0;
}

void set_collector(std::function<std::string()> c) {
    std::lock_guard lk(collector_mu());
    collector() = std::move(c);
}

std::string render() {
    struct Row {
        std::string name, labels, help;
        Kind kind;
        std::uint64_t v[kValues];
    };
    std::vector<Row> rows;
    if (Table* t = table()) {
        for (auto& s : t->slots) {
            if (std::atomic_ref(s.state).load(std::memory_order_acquire) != kReady) continue;
            Row r{s.name, s.labels, s.help, static_cast<Kind>(s.kind), {}};
            for (std::size_t i = 0; i < kValues; ++i) r.v[i] = std::atomic_ref(s.v[i]).load(std::memory_order_relaxed);
            rows.push_back(std::move(r));
        }
    }
    std::sort(rows.begin(), rows.end(),
              [](const Row& a, const Row& b) { return std::tie(a.name, a.labels) < std::tie(b.name, b.labels); });
    std::string out;
    const std::string* family = nullptr;
    for (const auto& r : rows) {
        if (!family || *family != r.name) {
            family = &r.name;
            out += "# HELP " + r.name + " " + escape(r.help, false) + "\n# TYPE " + r.name +
                   (r.kind == kCounter ? " counter\n" : " histogram\n");
        }
        if (r.kind == kCounter) {
            out += r.name + r.labels + " " + std::to_string(r.v[0]) + "\n";
            continue;
        }
        std::uint64_t cumulative = 0;
        for (std::size_t b = 0; b < kBucketCount; ++b) {
            cumulative += r.v[b];
            const std::string le = b < std::size(kBuckets) ? format_double(kBuckets[b]) : "+Inf";
            out += r.name + "_bucket" + with_le(r.labels, le) + " " + std::to_string(cumulative) + "\n";
        }
        out += r.name + "_sum" + r.labels + " " + format_double(static_cast<double>(r.v[kBucketCount]) / 1e9) + "\n";
        out += r.name + "_count" + r.labels + " " + std::to_string(cumulative) + "\n";
    }
    out +=
        "# HELP mailward_metrics_dropped_total Increments lost because the metrics table was full.\n"
        "# TYPE mailward_metrics_dropped_total counter\nmailward_metrics_dropped_total " +
        std::to_string(dropped()) + "\n";
    std::function<std::string()> c;
    {
        std::lock_guard lk(collector_mu());
        c = collector();
    }
    if (c) out += c();
    return out;
}

}  // namespace mailward::common::metrics
