"""A float64 NumPy restatement of `rmsprop_jax.rmsprop`, written from the docstring maths.

It does not import the library: every convention is spelled out here as plain arithmetic on
``float64`` arrays, so a test comparing the two checks the library against an independent
statement of the same rules. The order of operations is the textbook one (``rho*m + (1-rho)*x``):
in float64 the frameworks' different rounding orders agree far below float32 round-off.

Per step ``t`` (the number of updates before this one, from 0):

1. clip by value, then each tensor by its L2 norm, then the whole tree by its global L2 norm
   (``torch``: PyTorch's ``clip_grad_norm_``, which scales by ``c / (norm + 1e-6)`` capped at 1);
2. ``maximize`` negates the gradient; coupled weight decay (``torch``, or
   ``decoupled_weight_decay=False``) adds ``weight_decay * w`` to it;
3. ``ms = rho*ms + (1-rho)*g**2`` (``ms`` starts at 1 for ``tf1``, else 0); when centered,
   ``mg = rho*mg + (1-rho)*g`` and ``v = max(ms - mg**2, 0)``, else ``v = ms``;
4. ``eta = lr(t) / (1 + inverse_time_decay*t)``; ``den = sqrt(v) + eps`` (epsilon outside) or
   ``sqrt(v + eps)`` (inside) by convention;
5. without momentum ``w -= eta*g/den``; with momentum, ``torch`` keeps ``m = mu*m + g/den`` and
   steps ``eta*m`` (Nesterov: ``eta*(g/den + mu*m)``), the others keep ``m = mu*m + eta*g/den``
   and step ``m`` (Nesterov: ``eta*g/den + mu*m``);
6. decoupled weight decay (``keras3``, or ``decoupled_weight_decay=True``) also shrinks
   ``w -= eta*weight_decay*w`` (with the ``w`` from before the step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["CONVENTION_NAMES", "eps_inside", "reference_trajectory"]

CONVENTION_NAMES = ("keras", "keras3", "tf1", "torch", "optax")

Tree = dict[str, np.ndarray]


def eps_inside(convention: str, momentum: float) -> bool:
    """Whether ``convention`` puts epsilon inside the square root."""
    if convention == "keras":
        return momentum > 0  # tf.keras switches to TF's momentum kernel, which has it inside
    if convention in ("keras3", "tf1", "optax"):
        return True
    if convention == "torch":
        return False
    raise ValueError(f"unknown convention {convention!r}")


def _learning_rate_at(
    learning_rate: float | Sequence[float] | Callable[[int], float], t: int
) -> float:
    if callable(learning_rate):
        return float(learning_rate(t))
    if isinstance(learning_rate, list | tuple | np.ndarray):
        return float(learning_rate[t])
    return float(learning_rate)


def _clip(
    grads: Tree,
    clipvalue: float | None,
    clipnorm: float | None,
    global_clipnorm: float | None,
    torch: bool = False,
) -> Tree:
    out = {k: np.array(v, dtype=np.float64) for k, v in grads.items()}
    if clipvalue is not None:
        out = {k: np.clip(v, -clipvalue, clipvalue) for k, v in out.items()}
    if clipnorm is not None:
        clipped = {}
        for k, v in out.items():
            norm = np.sqrt(np.sum(v * v))
            if torch:
                clipped[k] = v * min(clipnorm / (norm + 1e-6), 1.0)
            else:
                clipped[k] = v if norm == 0 else v * clipnorm / max(norm, clipnorm)
        out = clipped
    if global_clipnorm is not None:
        norm = np.sqrt(sum(np.sum(v * v) for v in out.values()))
        if torch:
            scale = min(global_clipnorm / (norm + 1e-6), 1.0)
        elif not np.isfinite(norm):
            scale = np.nan
        elif norm <= global_clipnorm:
            scale = 1.0
        else:
            scale = global_clipnorm / norm
        out = {k: v * scale for k, v in out.items()}
    return out


def reference_trajectory(
    params0: Tree,
    grads: Sequence[Tree],
    *,
    learning_rate: float | Sequence[float] | Callable[[int], float] = 1e-3,
    rho: float = 0.9,
    momentum: float = 0.0,
    epsilon: float = 1e-7,
    centered: bool = False,
    nesterov: bool = False,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    inverse_time_decay: float = 0.0,
    weight_decay: float | None = None,
    decoupled_weight_decay: bool | None = None,
    maximize: bool = False,
    convention: str = "keras",
) -> tuple[list[Tree], list[dict[str, Tree]]]:
    """Runs RMSprop in float64 from ``params0`` over the gradient trees ``grads``.

    Args:
      params0: the starting params, name -> array.
      grads: one gradient tree per step (same names and shapes as ``params0``).
      learning_rate: a number, a sequence of per-step numbers, or a function of the step ``t``.
      rho: decay of the running means.
      momentum: momentum coefficient (0 keeps no buffer).
      epsilon: the denominator's epsilon.
      centered: divide by the root of ``ms - mg**2``.
      nesterov: Nesterov momentum.
      clipnorm: per-tensor L2 clipping, or None.
      clipvalue: elementwise clipping, or None.
      global_clipnorm: global L2 clipping, or None.
      inverse_time_decay: Keras's inverse-time decay.
      weight_decay: the weight decay coefficient, or None.
      decoupled_weight_decay: its coupling; None: coupled for ``torch``, else decoupled.
      maximize: ascend instead of descend.
      convention: ``"keras"``, ``"keras3"``, ``"tf1"``, ``"torch"`` or ``"optax"``.

    Returns:
      ``(params, slots)``: the params after each step, and after each step a dict of slot trees
      ``{"ms": ..., "mg": ..., "mom": ...}`` (``mg`` all zeros when not centered, ``mom`` all
      zeros without momentum).
    """
    if convention not in CONVENTION_NAMES:
        raise ValueError(f"unknown convention {convention!r}")
    if clipnorm is not None and global_clipnorm is not None:
        raise ValueError("clipnorm and global_clipnorm cannot both be set")
    if nesterov and momentum == 0:
        raise ValueError("nesterov needs momentum > 0")
    inside = eps_inside(convention, momentum)
    wd = 0.0 if weight_decay is None else float(weight_decay)
    coupled = (
        convention == "torch" if decoupled_weight_decay is None else not decoupled_weight_decay
    )

    w = {k: np.array(v, dtype=np.float64) for k, v in params0.items()}
    ms = {k: np.full(v.shape, 1.0 if convention == "tf1" else 0.0) for k, v in w.items()}
    mg = {k: np.zeros(v.shape) for k, v in w.items()}
    mom = {k: np.zeros(v.shape) for k, v in w.items()}

    params_out: list[Tree] = []
    slots_out: list[dict[str, Tree]] = []
    for t, grad_tree in enumerate(grads):
        if set(grad_tree) != set(w):
            raise ValueError(f"step {t}: gradient keys {sorted(grad_tree)} != {sorted(w)}")
        g_tree = _clip(grad_tree, clipvalue, clipnorm, global_clipnorm, convention == "torch")
        eta = _learning_rate_at(learning_rate, t) / (1.0 + inverse_time_decay * t)
        new_w = {}
        for k, w_k in w.items():
            g = g_tree[k]
            if maximize:
                g = -g
            if coupled and wd:
                g = g + wd * w_k
            ms[k] = rho * ms[k] + (1.0 - rho) * g * g
            if centered:
                mg[k] = rho * mg[k] + (1.0 - rho) * g
                v = np.maximum(ms[k] - mg[k] * mg[k], 0.0)
            else:
                v = ms[k]
            den = np.sqrt(v + epsilon) if inside else np.sqrt(v) + epsilon
            scaled = g / den
            if momentum == 0:
                step = eta * scaled
            elif convention == "torch":
                mom[k] = momentum * mom[k] + scaled
                step = eta * (scaled + momentum * mom[k]) if nesterov else eta * mom[k]
            else:
                mom[k] = momentum * mom[k] + eta * scaled
                step = eta * scaled + momentum * mom[k] if nesterov else mom[k]
            updated = w_k - step
            if not coupled and wd:
                updated = updated - eta * wd * w_k
            new_w[k] = updated
        w = new_w
        params_out.append({k: v.copy() for k, v in w.items()})
        slots_out.append(
            {
                "ms": {k: v.copy() for k, v in ms.items()},
                "mg": {k: v.copy() for k, v in mg.items()},
                "mom": {k: v.copy() for k, v in mom.items()},
            }
        )
    return params_out, slots_out
