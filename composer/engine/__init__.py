"""The engine: the plan compiled from an unrolling, the walk over it, the executor, and
forward passes in one call over whole or padded batches."""

from composer.engine.batches import run, run_padded
from composer.engine.executor import execute
from composer.engine.inputs import batched, check_inputs, infer_steps, read_inputs
from composer.engine.memory import check_memory, execute_bytes, tape_bytes
from composer.engine.pipeline import plan_for_steps, unroll_within
from composer.engine.plan import Plan, bind_params, compile_plan
from composer.engine.walk import Walk

__all__ = [
    "compile_plan",
    "Plan",
    "bind_params",
    "Walk",
    "execute",
    "run",
    "run_padded",
    "read_inputs",
    "batched",
    "check_inputs",
    "infer_steps",
    "unroll_within",
    "plan_for_steps",
    "check_memory",
    "execute_bytes",
    "tape_bytes",
]
