#!/usr/bin/env python3
"""Checks gemm_w4_wgmma.cuh's index arithmetic without a GPU.

Emulates the kernel's data movement (issue_x's shared-memory layout, dequant's A fragments, the
epilogue's D mapping) against the wgmma semantics the PTX ISA documents (register A layout of
m64nNk16, the K-major unswizzled B descriptor with LBO 128 / SBO 256, the D layout), on random
integers, and compares with a plain matmul. Exact (integers): any mismatch is an indexing bug.
Swapping LBO and SBO, or two A registers, gives thousands of mismatches. Run: python3 THIS."""
import random
random.seed(1)
def run(kN, n=128, k=384, tokens=None):
    tokens = tokens or kN
    W = [[random.randint(-8, 7) for _ in range(k)] for _ in range(n)]
    X = [[random.randint(-3, 3) for _ in range(k)] for _ in range(tokens)]
    acc = {}  # (warp, lane) -> list of kN/2
    for w in range(8):
        for lane in range(32):
            acc[(w, lane)] = [0] * (kN // 2)
    for chunk in range(k // 128):
        kc = chunk * 128
        smem = {}  # half index -> value
        for v in range(kN * 16):
            tok, u = v // 16, v % 16
            ut, uj = u // 4, u % 4
            kk = kc + 8 * u
            base = (tok // 8) * 256 + (tok % 8) * 16 + 4 * ut
            for p in range(4):
                dst = base + (2 * uj + p // 2) * (kN * 32) + (p % 2) * 128
                val0 = X[tok][kk + 2 * p] if tok < tokens else 0
                val1 = X[tok][kk + 2 * p + 1] if tok < tokens else 0
                smem[dst // 2] = val0
                smem[dst // 2 + 1] = val1
        for wg in range(2):
            # A fragments per lane per step, from dequant()
            frags = {}
            for wi in range(4):
                w = 4 * wg + wi
                for lane in range(32):
                    g, t = lane >> 2, lane & 3
                    ra, rb = 16 * w + g, 16 * w + g + 8
                    a = []
                    for j in range(4):
                        base_in = kc + 32 * t + 8 * j
                        qa = [(W[ra][base_in + 2 * p], W[ra][base_in + 2 * p + 1]) for p in range(4)]
                        qb = [(W[rb][base_in + 2 * p], W[rb][base_in + 2 * p + 1]) for p in range(4)]
                        a.append([qa[0], qb[0], qa[1], qb[1]])
                        a.append([qa[2], qb[2], qa[3], qb[3]])
                    frags[(wi, lane)] = a
            for s in range(8):
                # the documented A layout: reg0 (16wi+g, 2t..), reg1 (+8), reg2 (k 2t+8..), reg3
                A = [[None] * 16 for _ in range(64)]
                for wi in range(4):
                    for lane in range(32):
                        g, t = lane >> 2, lane & 3
                        r = frags[(wi, lane)][s]
                        A[16 * wi + g][2 * t], A[16 * wi + g][2 * t + 1] = r[0]
                        A[16 * wi + g + 8][2 * t], A[16 * wi + g + 8][2 * t + 1] = r[1]
                        A[16 * wi + g][2 * t + 8], A[16 * wi + g][2 * t + 9] = r[2]
                        A[16 * wi + g + 8][2 * t + 8], A[16 * wi + g + 8][2 * t + 9] = r[3]
                # B via the descriptor: start + (n/8)*SBO + (k/8)*LBO + (n%8)*16 + (k%8)*2
                start = s * (kN * 32)
                B = [[smem[(start + (nn // 8) * 256 + (kk // 8) * 128 + (nn % 8) * 16 + (kk % 8) * 2) // 2]
                      for nn in range(kN)] for kk in range(16)]
                for wi in range(4):
                    w = 4 * wg + wi
                    for lane in range(32):
                        g, t = lane >> 2, lane & 3
                        d = acc[(w, lane)]
                        for i in range(kN // 2):
                            row = 16 * wi + g + 8 * ((i >> 1) & 1)
                            col = 8 * (i >> 2) + 2 * t + (i & 1)
                            d[i] += sum(A[row][q] * B[q][col] for q in range(16))
    bad = 0
    for w in range(8):
        for lane in range(32):
            g, t = lane >> 2, lane & 3
            for h in range(2):
                row = 16 * w + g + 8 * h
                for j in range(kN // 8):
                    for e in range(2):
                        tok = 8 * j + 2 * t + e
                        if tok >= tokens: continue
                        got = acc[(w, lane)][4 * j + 2 * h + e]
                        want = sum(W[row][q] * X[tok][q] for q in range(k))
                        bad += got != want
    print(f"kN {kN} tokens {tokens}: mismatches {bad}")
if __name__ == "__main__":
    for kN in (16, 32, 64, 128):
        run(kN)
    run(16, tokens=9)
