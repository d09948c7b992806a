// powerfs: a FUSE file system for power-loss tests (docs/testing.md, "Power loss"). It passes every
// operation through to a backing directory and remembers what the program made durable: a file's
// data and size at its fsync/fdatasync, a directory's entries at the fsync of the directory (POSIX
// fsync(2): a new or renamed name is durable only once its directory is synced). With --power-cut,
// unmounting is a power failure: the backing directory is rebuilt from the durable state only, so
// every write, create, rename, unlink or truncate that was not synced is gone, as on a disk whose
// cache lost power. Without it, unmounting is a clean shutdown. Single-threaded (fuse -s): simple
// and ordered, fast enough for tests. Test tool only; never part of the product.
//
// SIGUSR1 makes the file system read-only (every change fails with EROFS, as an ext4 after an error
// with errors=remount-ro; Linux refuses a real read-only remount while files are open for writing),
// SIGUSR2 makes it writable again.
//
// Usage: powerfs [--power-cut] --state DIR BACKING MOUNTPOINT
//   DIR holds the durable copies (one file per inode); it must be empty and outside BACKING.
#define FUSE_USE_VERSION 31
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct Meta {
    mode_t mode = 0;  // type and permissions
    uid_t uid = 0;
    gid_t gid = 0;
    std::string link_target;  // symlinks
};

struct Stats {
    unsigned long fsyncs = 0, dir_syncs = 0, writes = 0;
};

struct State {
    int root = -1;    // the backing directory
    int shadow = -1;  // --state: durable file contents, named by id
    std::string backing_path;
    bool power_cut = false;
    std::uint64_t next_id = 1;
    std::uint64_t root_id = 0;
    std::unordered_map<ino_t, std::uint64_t> id_of;  // backing inode -> id (ids never reused)
    std::map<std::uint64_t, std::map<std::string, std::uint64_t>> durable_dirs;  // dir id -> name -> id
    std::map<std::uint64_t, Meta> durable_meta;             // id -> metadata when last made durable
    std::map<std::uint64_t, std::map<off_t, off_t>> dirty;  // id -> [start, end) written since sync
    std::set<std::uint64_t> has_shadow;                     // ids with a durable content file
    Stats stats;
};

State g;
volatile std::sig_atomic_t g_read_only = 0;

void on_signal(int sig) { g_read_only = sig == SIGUSR1 ? 1 : 0; }

#define REFUSE_IF_READ_ONLY()           \
    do {                                \
        if (g_read_only) return -EROFS; \
    } while (0)

std::string rel(const char* path) {
    while (*path == '/') ++path;
    return *path ? std::string(path) : std::string(".");
}

std::uint64_t id_for(ino_t ino, bool fresh) {
    auto it = g.id_of.find(ino);
    if (!fresh && it != g.id_of.end()) return it->second;
    const std::uint64_t id = g.next_id++;
    g.id_of[ino] = id;
    return id;
}

Meta meta_of(const struct stat& st, int dirfd, const std::string& name) {
    Meta m{st.st_mode, st.st_uid, st.st_gid, {}};
    if (S_ISLNK(st.st_mode)) {
        char buf[4096];
        ssize_t n = ::readlinkat(dirfd, name.c_str(), buf, sizeof buf);
        if (n > 0) m.link_target.assign(buf, static_cast<std::size_t>(n));
    }
    return m;
}

void add_dirty(std::uint64_t id, off_t start, off_t end) {
    if (end <= start) return;
    auto& r = g.dirty[id];
    auto it = r.upper_bound(start);
    if (it != r.begin() && std::prev(it)->second >= start) {
        --it;
        start = it->first;
    }
    while (it != r.end() && it->first <= end) {
        end = std::max(end, it->second);
        it = r.erase(it);
    }
    r[start] = end;
}

int copy_range(int from, int to, off_t start, off_t end) {
    std::vector<char> buf(1 << 16);
    while (start < end) {
        const auto want = static_cast<std::size_t>(std::min<off_t>(end - start, static_cast<off_t>(buf.size())));
        ssize_t n = ::pread(from, buf.data(), want, start);
        if (n < 0) return -errno;
        if (n == 0) break;
        if (::pwrite(to, buf.data(), static_cast<std::size_t>(n), start) != n) return -EIO;
        start += n;
    }
    return 0;
}

// Makes the file behind fd durable: its dirty ranges and its size go to the shadow copy.
int sync_file(int fd_in) {
    // The program's descriptor may be write-only: read through a descriptor of our own.
    const std::string self = "/proc/self/fd/" + std::to_string(fd_in);
    const int fd = ::open(self.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) return -errno;
    const std::uint64_t id = id_for(st.st_ino, false);
    const std::string name = std::to_string(id);
    int s = ::openat(g.shadow, name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s < 0) return -errno;
    int rc = 0;
    if (S_ISREG(st.st_mode)) {
        if (!g.has_shadow.count(id)) {
            rc = copy_range(fd, s, 0, st.st_size);  // first sync of a file the snapshot did not hold
        } else {
            for (auto [start, end] : g.dirty[id]) {
                if (start >= st.st_size) continue;
                rc = copy_range(fd, s, start, std::min(end, st.st_size));
                if (rc != 0) break;
            }
        }
        if (rc == 0 && ::ftruncate(s, st.st_size) != 0) rc = -errno;
    }
    ::close(s);
    if (rc != 0) return rc;
    g.has_shadow.insert(id);
    g.dirty.erase(id);
    auto& m = g.durable_meta[id];
    m.mode = st.st_mode;
    m.uid = st.st_uid;
    m.gid = st.st_gid;
    ++g.stats.fsyncs;
    return 0;
}

// Makes a directory's entries durable (names and the metadata of what they name).
int sync_dir(int dirfd) {
    struct stat dst {};
    if (::fstat(dirfd, &dst) != 0) return -errno;
    const std::uint64_t dir_id = id_for(dst.st_ino, false);
    int fd = ::dup(dirfd);
    if (fd < 0) return -errno;
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return -errno;
    }
    ::rewinddir(d);
    std::map<std::string, std::uint64_t> entries;
    while (auto* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        const std::uint64_t id = id_for(st.st_ino, false);
        entries[name] = id;
        Meta m = meta_of(st, dirfd, name);
        g.durable_meta[id] = m;
    }
    ::closedir(d);
    g.durable_dirs[dir_id] = std::move(entries);
    auto& m = g.durable_meta[dir_id];
    m.mode = dst.st_mode;
    m.uid = dst.st_uid;
    m.gid = dst.st_gid;
    ++g.stats.dir_syncs;
    return 0;
}

// The state at mount: everything in the backing directory is durable (it survived the last cut).
int snapshot(int dirfd) {
    if (int rc = sync_dir(dirfd); rc != 0) return rc;
    struct stat dst {};
    ::fstat(dirfd, &dst);
    for (const auto& [name, id] : g.durable_dirs[id_for(dst.st_ino, false)]) {
        struct stat st {};
        if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
        if (S_ISDIR(st.st_mode)) {
            int sub = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub < 0) return -errno;
            int rc = snapshot(sub);
            ::close(sub);
            if (rc != 0) return rc;
        } else if (S_ISREG(st.st_mode) && !g.has_shadow.count(id)) {
            int f = ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC);
            if (f < 0) return -errno;
            int rc = sync_file(f);
            ::close(f);
            if (rc != 0) return rc;
        }
    }
    return 0;
}

int remove_tree(int dirfd) {
    int fd = ::dup(dirfd);
    DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr;
    if (!d) return -errno;
    ::rewinddir(d);  // the offset is shared with dirfd
    std::vector<std::pair<std::string, bool>> names;
    while (auto* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        names.emplace_back(name, S_ISDIR(st.st_mode));
    }
    ::closedir(d);
    for (const auto& [name, is_dir] : names) {
        if (is_dir) {
            int sub = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub < 0) return -errno;
            int rc = remove_tree(sub);
            ::close(sub);
            if (rc != 0) return rc;
        }
        if (::unlinkat(dirfd, name.c_str(), is_dir ? AT_REMOVEDIR : 0) != 0) return -errno;
    }
    return 0;
}

void restore_meta(int dirfd, const std::string& name, const Meta& m) {
    (void)::fchownat(dirfd, name.c_str(), m.uid, m.gid, AT_SYMLINK_NOFOLLOW);
    if (!S_ISLNK(m.mode)) (void)::fchmodat(dirfd, name.c_str(), m.mode & 07777, 0);
}

// Rebuilds dir (backing, already empty) from the durable entries of dir_id.
int rebuild(int dirfd, std::uint64_t dir_id, std::map<std::uint64_t, std::pair<int, std::string>>& made,
            unsigned long& files) {
    for (const auto& [name, id] : g.durable_dirs[dir_id]) {
        const Meta& m = g.durable_meta[id];
        if (S_ISDIR(m.mode)) {
            if (::mkdirat(dirfd, name.c_str(), 0700) != 0) return -errno;
            int sub = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub < 0) return -errno;
            int rc = rebuild(sub, id, made, files);
            ::close(sub);
            if (rc != 0) return rc;
        } else if (S_ISREG(m.mode)) {
            if (auto it = made.find(id); it != made.end()) {  // a second name of one file
                if (::linkat(it->second.first, it->second.second.c_str(), dirfd, name.c_str(), 0) != 0) return -errno;
                continue;
            }
            int f = ::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (f < 0) return -errno;
            int s = ::openat(g.shadow, std::to_string(id).c_str(), O_RDONLY | O_CLOEXEC);
            if (s >= 0) {
                struct stat st {};
                ::fstat(s, &st);
                int rc = copy_range(s, f, 0, st.st_size);
                if (rc == 0 && ::ftruncate(f, st.st_size) != 0) rc = -errno;
                ::close(s);
                if (rc != 0) {
                    ::close(f);
                    return rc;
                }
            }  // a name made durable before any of its data: an empty file, as after a real crash
            ::fsync(f);
            ::close(f);
            made[id] = {::dup(dirfd), name};
            ++files;
        } else if (S_ISLNK(m.mode)) {
            if (::symlinkat(m.link_target.c_str(), dirfd, name.c_str()) != 0) return -errno;
        } else if (S_ISFIFO(m.mode)) {
            if (::mkfifoat(dirfd, name.c_str(), 0600) != 0) return -errno;
        } else {
            continue;  // sockets and devices do not survive a reboot
        }
        restore_meta(dirfd, name, m);
    }
    return 0;
}

int cut_power() {
    std::uint64_t dropped = 0;
    for (const auto& [id, ranges] : g.dirty)
        for (auto [s, e] : ranges) dropped += static_cast<std::uint64_t>(e - s);
    if (int rc = remove_tree(g.root); rc != 0) return rc;
    std::map<std::uint64_t, std::pair<int, std::string>> made;
    unsigned long files = 0;
    int rc = rebuild(g.root, g.root_id, made, files);
    for (auto& [id, where] : made) ::close(where.first);
    const Meta& rm = g.durable_meta[g.root_id];
    (void)::fchown(g.root, rm.uid, rm.gid);
    (void)::fchmod(g.root, rm.mode & 07777);
    ::syncfs(g.root);
    std::fprintf(stderr,
                 "powerfs: power cut: %lu file(s) rebuilt as last synced; unsynced writes to %llu file(s) dropped "
                 "(%llu bytes); %lu fsync(s), %lu directory sync(s), %lu write(s) while mounted\n",
                 files, static_cast<unsigned long long>(g.dirty.size()), static_cast<unsigned long long>(dropped),
                 g.stats.fsyncs, g.stats.dir_syncs, g.stats.writes);
    return rc;
}

// ---- FUSE operations: passthrough to the backing directory, plus the bookkeeping above ----------

void own(const std::string& name) {
    const fuse_context* c = fuse_get_context();
    (void)::fchownat(g.root, name.c_str(), c->uid, c->gid, AT_SYMLINK_NOFOLLOW);
}

bool exists(const std::string& name) {
    struct stat st {};
    return ::fstatat(g.root, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

void fresh_id(const std::string& name) {
    struct stat st {};
    if (::fstatat(g.root, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) id_for(st.st_ino, true);
}

int op_getattr(const char* path, struct stat* st, fuse_file_info* fi) {
    if (fi) return ::fstat(static_cast<int>(fi->fh), st) == 0 ? 0 : -errno;
    return ::fstatat(g.root, rel(path).c_str(), st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

int op_readlink(const char* path, char* buf, size_t size) {
    ssize_t n = ::readlinkat(g.root, rel(path).c_str(), buf, size - 1);
    if (n < 0) return -errno;
    buf[n] = '\0';
    return 0;
}

int op_mknod(const char* path, mode_t mode, dev_t rdev) {
    REFUSE_IF_READ_ONLY();
    const std::string name = rel(path);
    if (::mknodat(g.root, name.c_str(), mode, rdev) != 0) return -errno;
    own(name);
    fresh_id(name);
    return 0;
}

int op_mkdir(const char* path, mode_t mode) {
    REFUSE_IF_READ_ONLY();
    const std::string name = rel(path);
    if (::mkdirat(g.root, name.c_str(), mode) != 0) return -errno;
    own(name);
    fresh_id(name);
    return 0;
}

int op_unlink(const char* path) {
    REFUSE_IF_READ_ONLY();
    return ::unlinkat(g.root, rel(path).c_str(), 0) == 0 ? 0 : -errno;
}
int op_rmdir(const char* path) {
    REFUSE_IF_READ_ONLY();
    return ::unlinkat(g.root, rel(path).c_str(), AT_REMOVEDIR) == 0 ? 0 : -errno;
}

int op_symlink(const char* target, const char* path) {
    REFUSE_IF_READ_ONLY();
    const std::string name = rel(path);
    if (::symlinkat(target, g.root, name.c_str()) != 0) return -errno;
    own(name);
    fresh_id(name);
    return 0;
}

int op_rename(const char* from, const char* to, unsigned int flags) {
    REFUSE_IF_READ_ONLY();
    return ::renameat2(g.root, rel(from).c_str(), g.root, rel(to).c_str(), flags) == 0 ? 0 : -errno;
}

int op_link(const char* from, const char* to) {
    REFUSE_IF_READ_ONLY();
    return ::linkat(g.root, rel(from).c_str(), g.root, rel(to).c_str(), 0) == 0 ? 0 : -errno;
}

int op_chmod(const char* path, mode_t mode, fuse_file_info* fi) {
    REFUSE_IF_READ_ONLY();
    if (fi) return ::fchmod(static_cast<int>(fi->fh), mode) == 0 ? 0 : -errno;
    return ::fchmodat(g.root, rel(path).c_str(), mode, 0) == 0 ? 0 : -errno;
}

int op_chown(const char* path, uid_t uid, gid_t gid, fuse_file_info* fi) {
    REFUSE_IF_READ_ONLY();
    if (fi) return ::fchown(static_cast<int>(fi->fh), uid, gid) == 0 ? 0 : -errno;
    return ::fchownat(g.root, rel(path).c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

int op_truncate(const char* path, off_t size, fuse_file_info* fi) {
    REFUSE_IF_READ_ONLY();
    int fd = fi ? static_cast<int>(fi->fh) : ::openat(g.root, rel(path).c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = ::ftruncate(fd, size) == 0 ? 0 : -errno;
    if (!fi) ::close(fd);
    return rc;  // the size becomes durable at the next sync (sync_file copies the size)
}

int op_open(const char* path, fuse_file_info* fi) {
    if (g_read_only && (fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
    int fd = ::openat(g.root, rel(path).c_str(), fi->flags & ~O_NOFOLLOW);
    if (fd < 0) return -errno;
    fi->fh = static_cast<std::uint64_t>(fd);
    return 0;
}

int op_create(const char* path, mode_t mode, fuse_file_info* fi) {
    REFUSE_IF_READ_ONLY();
    const std::string name = rel(path);
    const bool existed = exists(name);
    int fd = ::openat(g.root, name.c_str(), fi->flags | O_CREAT, mode);
    if (fd < 0) return -errno;
    if (!existed) {
        own(name);
        fresh_id(name);
    }
    fi->fh = static_cast<std::uint64_t>(fd);
    return 0;
}

int op_read(const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
    ssize_t n = ::pread(static_cast<int>(fi->fh), buf, size, off);
    return n < 0 ? -errno : static_cast<int>(n);
}

int op_write(const char*, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
    REFUSE_IF_READ_ONLY();
    const int fd = static_cast<int>(fi->fh);
    ssize_t n = ::pwrite(fd, buf, size, off);
    if (n < 0) return -errno;
    struct stat st {};
    if (::fstat(fd, &st) == 0) add_dirty(id_for(st.st_ino, false), off, off + n);
    ++g.stats.writes;
    return static_cast<int>(n);
}

int op_statfs(const char*, struct statvfs* st) { return ::fstatvfs(g.root, st) == 0 ? 0 : -errno; }

int op_release(const char*, fuse_file_info* fi) {
    ::close(static_cast<int>(fi->fh));
    return 0;
}

int op_fsync(const char*, int, fuse_file_info* fi) { return sync_file(static_cast<int>(fi->fh)); }

int op_opendir(const char* path, fuse_file_info* fi) {
    int fd = ::openat(g.root, rel(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    fi->fh = static_cast<std::uint64_t>(fd);
    return 0;
}

int op_readdir(const char*, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info* fi, fuse_readdir_flags) {
    int fd = ::dup(static_cast<int>(fi->fh));
    DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr;
    if (!d) return -errno;
    ::rewinddir(d);
    while (auto* e = ::readdir(d)) {
        if (fill(buf, e->d_name, nullptr, 0, static_cast<fuse_fill_dir_flags>(0)) != 0) break;
    }
    ::closedir(d);
    return 0;
}

int op_releasedir(const char*, fuse_file_info* fi) {
    ::close(static_cast<int>(fi->fh));
    return 0;
}

int op_fsyncdir(const char*, int, fuse_file_info* fi) { return sync_dir(static_cast<int>(fi->fh)); }

int op_utimens(const char* path, const struct timespec tv[2], fuse_file_info* fi) {
    REFUSE_IF_READ_ONLY();
    if (fi) return ::futimens(static_cast<int>(fi->fh), tv) == 0 ? 0 : -errno;
    return ::utimensat(g.root, rel(path).c_str(), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

int op_fallocate(const char*, int mode, off_t off, off_t len, fuse_file_info* fi) {
    REFUSE_IF_READ_ONLY();
    const int fd = static_cast<int>(fi->fh);
    if (::fallocate(fd, mode, off, len) != 0) return -errno;
    struct stat st {};
    if (::fstat(fd, &st) == 0) add_dirty(id_for(st.st_ino, false), off, off + len);
    return 0;
}

void* op_init(fuse_conn_info*, fuse_config* cfg) {
    // No caching of names or attributes in the kernel: the backing directory is the truth.
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->use_ino = 1;
    return nullptr;
}

int usage() {
    std::fprintf(stderr, "usage: powerfs [--power-cut] --state DIR BACKING MOUNTPOINT\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string state, backing, mountpoint;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--power-cut") {
            g.power_cut = true;
        } else if (a == "--state" && i + 1 < argc) {
            state = argv[++i];
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "powerfs: unknown option %s\n", a.c_str());
            return usage();
        } else if (backing.empty()) {
            backing = a;
        } else if (mountpoint.empty()) {
            mountpoint = a;
        } else {
            return usage();
        }
    }
    if (state.empty() || backing.empty() || mountpoint.empty()) return usage();
    g.root = ::open(backing.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g.shadow = ::open(state.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g.root < 0 || g.shadow < 0) {
        std::fprintf(stderr, "powerfs: cannot open %s: %s\n", g.root < 0 ? backing.c_str() : state.c_str(),
                     std::strerror(errno));
        return 1;
    }
    struct stat rst {};
    ::fstat(g.root, &rst);
    g.root_id = id_for(rst.st_ino, true);
    if (int rc = snapshot(g.root); rc != 0) {
        std::fprintf(stderr, "powerfs: cannot snapshot %s: %s\n", backing.c_str(), std::strerror(-rc));
        return 1;
    }
    g.stats = {};

    fuse_operations ops{};
    ops.getattr = op_getattr;
    ops.readlink = op_readlink;
    ops.mknod = op_mknod;
    ops.mkdir = op_mkdir;
    ops.unlink = op_unlink;
    ops.rmdir = op_rmdir;
    ops.symlink = op_symlink;
    ops.rename = op_rename;
    ops.link = op_link;
    ops.chmod = op_chmod;
    ops.chown = op_chown;
    ops.truncate = op_truncate;
    ops.open = op_open;
    ops.read = op_read;
    ops.write = op_write;
    ops.statfs = op_statfs;
    ops.release = op_release;
    ops.fsync = op_fsync;
    ops.opendir = op_opendir;
    ops.readdir = op_readdir;
    ops.releasedir = op_releasedir;
    ops.fsyncdir = op_fsyncdir;
    ops.init = op_init;
    ops.create = op_create;
    ops.utimens = op_utimens;
    ops.fallocate = op_fallocate;

    // Foreground, single-threaded; the kernel checks permissions from the attributes (the server's
    // children run as their own user, hence allow_other).
    std::string prog = argv[0];
    std::vector<std::string> args = {
        prog, mountpoint, "-f", "-s", "-o", "default_permissions,allow_other,fsname=powerfs,subtype=powerfs"};
    std::vector<char*> fargv;
    for (auto& a : args) fargv.push_back(a.data());
    std::signal(SIGUSR1, on_signal);
    std::signal(SIGUSR2, on_signal);
    const int rc = fuse_main(static_cast<int>(fargv.size()), fargv.data(), &ops, nullptr);
    if (rc != 0) return rc;
    if (g.power_cut) {
        if (int c = cut_power(); c != 0) {
            std::fprintf(stderr, "powerfs: rebuilding %s failed: %s\n", backing.c_str(), std::strerror(-c));
            return 1;
        }
    }
    return 0;
}
