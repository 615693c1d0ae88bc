#pragma once
// A fixed pool of worker threads with a blocking parallel_for. The CPU backend splits every
// matrix product across it, a few hundred times per decoded token, so hand-off latency matters:
// workers spin briefly on an atomic generation counter before sleeping on a condition variable,
// and the caller spins for the stragglers. One pool per process is enough (see default_pool()).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace turbine {

/// A fixed set of worker threads running one parallel_for at a time (see default_pool()).
class ThreadPool {
 public:
  /// Starts `threads - 1` workers (the caller of parallel_for is the last); 0: one per core.
  explicit ThreadPool(int threads = 0) {
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    size_ = threads;
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_.store(true);
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return size_; }  ///< threads that run a parallel_for, the caller's included

  /// Calls fn(begin, end) on disjoint chunks covering [0, n), one chunk per thread, and waits.
  /// Chunks are multiples of `grain` (except the last) so callers can keep blocks whole.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1) {
    if (n <= 0) return;
    const int64_t blocks = (n + grain - 1) / grain;
    const int parts = static_cast<int>(std::min<int64_t>(size_, blocks));
    if (parts <= 1) {
      fn(0, n);
      return;
    }
    std::lock_guard<std::mutex> call_lock(call_mu_);  // one parallel_for at a time
    job_ = &fn;
    n_ = n;
    grain_ = grain;
    parts_ = parts;
    // Every worker acknowledges every job, even one with no part in it, so that no worker can lag
    // into the next job's parameters.
    pending_.store(size_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);  // pairs with the sleepers' predicate check
      generation_.fetch_add(1, std::memory_order_release);
    }
    if (sleepers_.load() > 0) cv_.notify_all();
    run_part(0);
    for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins)
      if (spins > 1000) std::this_thread::yield();
    job_ = nullptr;
  }

 private:
  void run_part(int part) {
    const int64_t blocks = (n_ + grain_ - 1) / grain_;
    const int64_t b0 = blocks * part / parts_, b1 = blocks * (part + 1) / parts_;
    const int64_t begin = std::min(n_, b0 * grain_), end = std::min(n_, b1 * grain_);
    if (begin < end) (*job_)(begin, end);
  }
  void worker(int index) {
    uint64_t seen = 0;
    for (;;) {
      // Spin briefly (tens of microseconds) for the next job: decode issues them back to back. Longer
      // spins cost far more than they save once the machine is oversubscribed.
      uint64_t g = generation_.load(std::memory_order_acquire);
      for (int spins = 0; g == seen && spins < 4000; ++spins) {
#if defined(__x86_64__) || defined(_M_X64)
        __builtin_ia32_pause();
#endif
        g = generation_.load(std::memory_order_acquire);
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lock(mu_);
        sleepers_.fetch_add(1);
        cv_.wait(lock, [&] { return generation_.load() != seen; });
        sleepers_.fetch_sub(1);
        g = generation_.load(std::memory_order_acquire);
      }
      seen = g;
      if (stop_.load()) return;
      if (index < parts_) run_part(index);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::vector<std::thread> workers_;
  int size_ = 1;
  std::mutex mu_, call_mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0}, sleepers_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t n_ = 0, grain_ = 1;
  int parts_ = 0;
};

/// The process-wide pool, sized to the machine (TURBINE_THREADS overrides).
inline ThreadPool& default_pool() {
  static ThreadPool pool([] {
    if (const char* env = std::getenv("TURBINE_THREADS")) return std::atoi(env);
    return 0;
  }());
  return pool;
}

}  // namespace turbine
