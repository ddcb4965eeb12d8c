//! The machine's peak single-precision arithmetic rate, measured: independent fused
//! multiply-adds on registers only, for the widest vectors the CPU has, on every thread.

use std::time::Instant;

use rayon::prelude::*;

/// Peak GFLOP/s (one FMA = 2 flops) of one thread and of all threads together, and the
/// instruction set measured.
#[derive(Clone, Copy, Debug)]
pub struct Peak {
    /// One thread.
    pub one_thread: f64,
    /// All of rayon's threads at once.
    pub all_threads: f64,
    /// Which vectors ("avx512", "avx2" or "scalar").
    pub isa: &'static str,
}

const ITERS: u64 = 20_000_000;

/// Measures the peak: the best of three runs of each measurement (a run long enough that
/// the clock's resolution and the thread start-up do not count).
pub fn measure() -> Peak {
    let (isa, flops_per_iter) = kernel_info();
    let run = || {
        let start = Instant::now();
        std::hint::black_box(kernel(ITERS));
        flops_per_iter * ITERS as f64 / start.elapsed().as_secs_f64() / 1e9
    };
    let one_thread = (0..3).map(|_| run()).fold(0.0, f64::max);
    let threads = rayon::current_num_threads();
    let all_threads = (0..3)
        .map(|_| {
            let start = Instant::now();
            (0..threads).into_par_iter().for_each(|_| {
                std::hint::black_box(kernel(ITERS));
            });
            threads as f64 * flops_per_iter * ITERS as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max);
    Peak {
        one_thread,
        all_threads,
        isa,
    }
}

/// Independent accumulators per iteration (enough to hide the FMA latency on two ports).
const CHAINS: usize = 12;

fn kernel_info() -> (&'static str, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return ("avx512", (CHAINS * 16 * 2) as f64);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return ("avx2", (CHAINS * 8 * 2) as f64);
        }
    }
    ("scalar", (CHAINS * 2) as f64)
}

fn kernel(iters: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { fma512(iters) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { fma256(iters) };
        }
    }
    let mut acc = [1.0f32; CHAINS];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma512(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let m = _mm512_set1_ps(0.999_999);
    let c = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); CHAINS];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, m, c);
        }
    }
    acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma256(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let m = _mm256_set1_ps(0.999_999);
    let c = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); CHAINS];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, m, c);
        }
    }
    let mut out = [0.0f32; 8];
    let mut sum = 0.0;
    for a in acc {
        // SAFETY: `out` has room for 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), a) };
        sum += out.iter().sum::<f32>();
    }
    sum
}
