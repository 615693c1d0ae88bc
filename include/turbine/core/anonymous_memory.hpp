#pragma once
// A large zero-filled region that the operating system backs only where it is written, and whose
// pages can be handed back (discard) while the region stays reserved. The paged KV cache lives in
// one: reserving the whole budget up front costs no memory until blocks are used, and a block that
// goes back to the free list gives its memory back, so a server's resident size returns to where
// it started once its requests end.
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

#include "error.hpp"

namespace turbine {

/// Anonymous private memory of a fixed size (RAII); reads of untouched pages give zeros.
class AnonymousMemory {
 public:
  AnonymousMemory() = default;
  /// Reserves `bytes`; throws Error (naming `what` and the size) when the address space is short.
  AnonymousMemory(size_t bytes, const char* what) : size_(bytes) {
    if (size_ == 0) return;
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      fail(what, ": cannot reserve ", size_ >> 20, " MiB (", std::strerror(errno), "); lower the cache budget");
    data_ = static_cast<std::byte*>(p);
  }
  AnonymousMemory(const AnonymousMemory&) = delete;
  AnonymousMemory& operator=(const AnonymousMemory&) = delete;
  /// Takes over `o`'s region.
  AnonymousMemory(AnonymousMemory&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr, o.size_ = 0; }
  /// Frees this region and takes over `o`'s.
  AnonymousMemory& operator=(AnonymousMemory&& o) noexcept {
    if (this != &o) {
      release();
      data_ = o.data_, size_ = o.size_;
      o.data_ = nullptr, o.size_ = 0;
    }
    return *this;
  }
  ~AnonymousMemory() { release(); }

  std::byte* data() const { return data_; }  ///< the region's first byte
  size_t size() const { return size_; }      ///< bytes reserved

  /// Gives the pages wholly inside [offset, offset + bytes) back to the system; they read as zeros
  /// afterwards. Cheap when they were never touched.
  void discard(size_t offset, size_t bytes) {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t first = (offset + page - 1) / page * page, last = (offset + bytes) / page * page;
    if (last > first) ::madvise(data_ + first, last - first, MADV_DONTNEED);
  }

 private:
  void release() {
    if (data_) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace turbine
