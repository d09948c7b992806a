// The body spool (see spool.hpp): segment files, appends, durability, reads, hole punching and
// the sweep of unused segments. Linux: pwrite/pread, fdatasync, flock, fallocate(PUNCH_HOLE).
#include "store/sqlite/spool.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <random>
#include <system_error>

#include "store/sqlite/db.hpp"

namespace mailward::store::sqlite {
namespace {

constexpr std::uint64_t kAlign = 4096;  // bodies start on block boundaries: a punched body frees whole blocks
constexpr const char* kSuffix = ".seg";
constexpr const char* kTmpPrefix = ".new-";

// A full or read-only file system is Errc::storage_full (submission answers 452 4.3.1).
error_code sys_error(int err) {
    if (err == ENOSPC || err == EDQUOT || err == EROFS) return common::Errc::storage_full;
    return error_code(err, boost::system::system_category());
}

std::uint64_t align_up(std::uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

std::string hex_name(std::int64_t id) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
    return buf;
}

std::optional<std::int64_t> parse_name(const std::string& name) {
    if (name.size() != 16 + std::strlen(kSuffix) || !name.ends_with(kSuffix)) return std::nullopt;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 16; ++i) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return std::nullopt;
        v = v << 4 | static_cast<std::uint64_t>(d);
    }
    if (v == 0 || v > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(v);
}

std::int64_t random_id() {
    std::random_device rd;
    std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    v &= static_cast<std::uint64_t>(INT64_MAX);
    return v == 0 ? 1 : static_cast<std::int64_t>(v);
}

Result<void> write_all(int fd, const char* p, std::size_t n, std::uint64_t off) {
    while (n > 0) {
        ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
        if (w < 0) {
            if (errno == EINTR) continue;
            return sys_error(errno);
        }
        p += w;
        n -= static_cast<std::size_t>(w);
        off += static_cast<std::uint64_t>(w);
    }
    return {};
}

}  // namespace

BodySpool::Segment::~Segment() {
    if (fd >= 0) ::close(fd);  // also drops the flock
}

BodySpool::BodySpool(std::filesystem::path dir, std::uint64_t segment_bytes, int dir_fd)
    : dir_(std::move(dir)), segment_bytes_(std::max<std::uint64_t>(segment_bytes, kAlign)), dir_fd_(dir_fd) {}

BodySpool::~BodySpool() {
    {
        std::lock_guard lk(mu_);
        active_.reset();
        open_.clear();
    }
    if (dir_fd_ >= 0) ::close(dir_fd_);
}

Result<std::unique_ptr<BodySpool>> BodySpool::open(std::filesystem::path dir, std::uint64_t segment_bytes) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        int err = errno;
        spdlog::error("store: cannot create the spool directory {}: {}", dir.string(), std::strerror(err));
        return sys_error(err);
    }
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int err = errno;
        spdlog::error("store: cannot open the spool directory {}: {}", dir.string(), std::strerror(err));
        return sys_error(err);
    }
    return std::unique_ptr<BodySpool>(new BodySpool(std::move(dir), segment_bytes, dfd));
}

std::uint64_t BodySpool::span_end(const SpoolRef& ref) {
    return ref.start + align_up(std::max<std::uint64_t>(ref.length, 1));
}

std::filesystem::path BodySpool::path_of(std::int64_t segment) const { return dir_ / (hex_name(segment) + kSuffix); }

Result<std::shared_ptr<BodySpool::Segment>> BodySpool::new_segment() {
    for (int attempt = 0; attempt < 8; ++attempt) {
        const std::int64_t id = random_id();
        const auto tmp = dir_ / (kTmpPrefix + hex_name(id));
        const auto final_path = path_of(id);
        int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST) continue;
            int err = errno;
            spdlog::error("store: cannot create a spool segment in {}: {}", dir_.string(), std::strerror(err));
            return sys_error(err);
        }
        auto seg = std::make_shared<Segment>();
        seg->id = id;
        seg->fd = fd;
        // Locked before the file has its sweepable name: no sweep can take a segment being filled.
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            ::unlink(tmp.c_str());
            return sys_error(err);
        }
        if (::link(tmp.c_str(), final_path.c_str()) != 0) {
            int err = errno;
            ::unlink(tmp.c_str());
            if (err == EEXIST) continue;
            spdlog::error("store: cannot name the spool segment {}: {}", final_path.string(), std::strerror(err));
            return sys_error(err);
        }
        ::unlink(tmp.c_str());
        // The new name must survive a crash before any body in it is reported stored.
        if (!unsafe_no_fsync() && ::fsync(dir_fd_) != 0) {
            int err = errno;
            spdlog::error("store: cannot sync the spool directory {}: {}", dir_.string(), std::strerror(err));
            ::unlink(final_path.c_str());
            return sys_error(err);
        }
        return seg;
    }
    return common::Errc::storage_error;
}

Result<SpoolRef> BodySpool::append(std::string_view body) {
    std::shared_ptr<Segment> seg;
    SpoolRef ref;
    {
        std::lock_guard lk(mu_);
        if (!active_ || (active_->end > 0 && active_->end + body.size() > segment_bytes_)) {
            auto fresh = new_segment();
            if (!fresh) return fresh.error();
            if (active_ && active_->pending == 0) open_.erase(active_->id);  // closes it: sweepable
            active_ = std::move(*fresh);
            open_[active_->id] = active_;
        }
        seg = active_;
        ref.segment = seg->id;
        ref.start = seg->end;
        ref.length = body.size();
        seg->end = align_up(seg->end + std::max<std::uint64_t>(body.size(), 1));
        ++seg->pending;
    }
    if (auto w = write_all(seg->fd, body.data(), body.size(), ref.start); !w) {
        spdlog::error("store: writing a body to spool segment {} failed: {}", hex_name(ref.segment),
                      w.error().message());
        settled(ref.segment);
        return w.error();
    }
    return ref;
}

Result<void> BodySpool::sync(const std::vector<std::int64_t>& segments) {
    for (auto id : segments) {
        std::shared_ptr<Segment> seg;
        {
            std::lock_guard lk(mu_);
            auto it = open_.find(id);
            if (it != open_.end()) seg = it->second;
        }
        if (!seg) {
            spdlog::error("store: spool segment {} to sync is not open", hex_name(id));
            return common::Errc::storage_error;
        }
        if (!unsafe_no_fsync() && ::fdatasync(seg->fd) != 0) {
            int err = errno;
            spdlog::error("store: fdatasync of spool segment {} failed: {}", hex_name(id), std::strerror(err));
            return sys_error(err);
        }
    }
    return {};
}

void BodySpool::settled(std::int64_t segment) {
    std::lock_guard lk(mu_);
    auto it = open_.find(segment);
    if (it == open_.end()) return;
    auto& seg = it->second;
    if (seg->pending > 0) --seg->pending;
    if (seg->pending == 0 && seg != active_) open_.erase(it);
}

Result<std::string> BodySpool::read(const SpoolRef& ref) const {
    int fd = ::open(path_of(ref.segment).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        spdlog::error("store: cannot open spool segment {}: {}", hex_name(ref.segment), std::strerror(err));
        return err == ENOENT ? error_code(common::Errc::not_found) : sys_error(err);
    }
    std::string out(ref.length, '\0');
    std::size_t got = 0;
    while (got < ref.length) {
        ssize_t r = ::pread(fd, out.data() + got, ref.length - got, static_cast<off_t>(ref.start + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += static_cast<std::size_t>(r);
    }
    int err = errno;
    ::close(fd);
    if (got != ref.length) {
        spdlog::error("store: spool segment {} holds {} of the {} body octets at {}{}", hex_name(ref.segment), got,
                      ref.length, ref.start, got < ref.length && err ? std::string(": ") + std::strerror(err) : "");
        return common::Errc::corrupt;
    }
    return out;
}

Result<void> BodySpool::release(const SpoolRef& ref, bool scrub) {
    int fd = ::open(path_of(ref.segment).c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return {};  // the whole segment is gone already
        return sys_error(errno);
    }
    const std::uint64_t span = align_up(std::max<std::uint64_t>(ref.length, 1));
    Result<void> result;
    if (scrub) {
        // Overwrite and sync before punching: a punched range's old blocks are only unlinked.
        static const std::string zeros(64 * 1024, '\0');
        for (std::uint64_t off = 0; off < ref.length && result; off += zeros.size()) {
            auto n = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), ref.length - off));
            result = write_all(fd, zeros.data(), n, ref.start + off);
        }
        if (result && ::fdatasync(fd) != 0) result = sys_error(errno);
    }
    if (result && ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(ref.start),
                              static_cast<off_t>(span)) != 0) {
        // Not every file system punches holes; the space comes back when the segment is removed.
        if (errno != EOPNOTSUPP && errno != ENOSYS) result = sys_error(errno);
    }
    ::close(fd);
    if (!result)
        spdlog::warn("store: releasing {} octets of spool segment {} failed: {}", ref.length, hex_name(ref.segment),
                     result.error().message());
    return result;
}

std::size_t BodySpool::sweep(const std::function<Result<bool>(std::int64_t)>& in_use) {
    std::size_t removed = 0;
    std::error_code ec;
    std::filesystem::directory_iterator it(dir_, ec);
    if (ec) {
        spdlog::warn("store: cannot list the spool directory {}: {}", dir_.string(), ec.message());
        return 0;
    }
    for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
        if (ec) break;
        const std::string name = it->path().filename().string();
        const bool tmp = name.starts_with(kTmpPrefix);
        auto id = parse_name(name);
        if (!tmp && !id) continue;  // not ours: left alone
        if (id) {
            std::lock_guard lk(mu_);
            if (open_.count(*id)) continue;  // this process still appends to it
        }
        int fd = ::open(it->path().c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) continue;
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {  // another process is filling it
            ::close(fd);
            continue;
        }
        bool remove = tmp;  // a half-made segment left by a crash
        if (id) {
            auto used = in_use(*id);
            remove = used && !*used;
        }
        if (remove && ::unlink(it->path().c_str()) == 0) {
            ++removed;
            spdlog::debug("store: removed unused spool file {}", name);
        }
        ::close(fd);
    }
    return removed;
}

}  // namespace mailward::store::sqlite
