"""The prefetch hint: ask the CPU to start loading a row before a loop reaches it.

LLVM has a ``prefetch`` instruction that Numba does not expose, so it is declared here as a
small intrinsic. A kernel that walks a batch computes where the bucket (or row) of the ID
``PREFETCH_AHEAD`` positions on lives and requests it; by the time the loop gets there the
cache miss is over, and the independent misses of different IDs overlap. With
``NUMBA_DISABLE_JIT=1`` the hint is a Python function that does nothing.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["PREFETCH_AHEAD", "prefetch", "jit_enabled"]

#: How many IDs ahead the kernels ask the CPU to fetch a bucket or a row (measured: 16
#: hides most of a cache miss on the benchmark's machine; 4 too few, 32 too many).
PREFETCH_AHEAD = 16


def _prefetch_py(arr, i) -> None:
    """What :func:`prefetch` does without the JIT: nothing (it is only a hint).

    See: book/ch06_numba.md
    """


@intrinsic
def _prefetch_intrinsic(typingctx, arr, i):
    """Ask the CPU to start loading ``arr[i]`` (a row, for 2-D arrays) into the cache.

    LLVM's ``prefetch`` hint, which Numba does not expose: a lookup computes where the
    bucket of an ID several positions ahead lives and requests it, so that by the time the
    loop gets there the cache miss is over. The independent misses then overlap."""
    sig = types.void(arr, i)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = ir.Constant(ir.IntType(64), 0)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]] + [zero] * (aryty.ndim - 1),
                                       wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read (0), keep in all cache levels (3), data cache (1)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


#: ``prefetch(arr, i)``: start loading ``arr[i]`` into the cache (callable from compiled
#: code only; a no-op when the JIT is disabled).
prefetch = _prefetch_py if numba.config.DISABLE_JIT else _prefetch_intrinsic


def jit_enabled() -> bool:
    """False when ``NUMBA_DISABLE_JIT=1`` (the kernels then run as Python).

    See: book/ch06_numba.md
    """
    return not numba.config.DISABLE_JIT
