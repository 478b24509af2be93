"""Weight-restricted LLC: sample a named subset of the parameters, the rest frozen at w*.

A restriction picks, per parameter leaf, all of it, none of it, or some entries (a boolean
mask). The sampled position is the parameter pytree with frozen leaves replaced by None (an
empty subtree), partly sampled leaves by the 1-D vector of their selected entries, and fully
sampled leaves kept as they are; the loss sees `merge(position, w*)`, the checkpoint with the
sampled entries put back. The restricted posterior is therefore

    p(u) ∝ exp(−nβ L_n(merge(u, w*)) − (γ/2) ||u − u*||²),

and λ̂_S(w*) = nβ (E[L_n(merge(u, w*))] − L_n(w*)) is the LLC of the loss restricted to the
affine slice through w* along the block S (devinterp's "weight-restricted LLC").

The kernel is an ordinary `slt.make_sampler` kernel built inside the compiled call on that
restricted posterior; the checkpoint w* (frozen values included), the data, nβ and γ are traced
operands, so `slt.sample_jobs` runs every checkpoint of one restriction in one compiled call.
"""

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import slt
from slt.samplers import TracedKernel

ALL, NONE, SOME = "all", "none", "some"


def key_name(entry) -> str:
    """One path component as text: a dict key, a sequence index or an attribute name."""
    for attribute in ("key", "idx", "name"):
        if hasattr(entry, attribute):
            return str(getattr(entry, attribute))
    return str(entry)


def leaf_paths(params) -> list[str]:
    """"layers/0/weight"-style paths of the parameter leaves, in `tree_leaves` order."""
    return ["/".join(key_name(entry) for entry in path) or "(root)"
            for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


class Restriction(NamedTuple):
    """Which entries of each parameter leaf are sampled: `modes[i]` is "all", "none" or "some",
    `indices[i]` the flat indices of the sampled entries for "some" (else None)."""

    name: str
    modes: tuple[str, ...]
    indices: tuple[np.ndarray | None, ...]

    @property
    def everything(self) -> bool:
        return all(mode == ALL for mode in self.modes)

    def num_sampled(self, sizes: Sequence[int]) -> int:
        return int(sum(size if mode == ALL else (0 if mode == NONE else len(index))
                       for mode, index, size in zip(self.modes, self.indices, sizes)))


def _matches(path: str, pattern: str) -> bool:
    pattern = pattern.strip("/")
    return path == pattern or path.startswith(pattern + "/")


def make_restriction(name: str, spec: Any, template) -> Restriction:
    """A `Restriction` from a path, a sequence of paths (a path also selects every leaf under
    it: "layers/0" selects "layers/0/weight" and "layers/0/bias"), or a mask pytree shaped like
    the parameters whose leaves are booleans or boolean arrays of the leaf's shape.

    Raises ValueError naming a path that matches no parameter, or a mask that does not fit.
    """
    paths = leaf_paths(template)
    shapes = [np.shape(leaf) for leaf in jax.tree_util.tree_leaves(template)]
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, (list, tuple)) and all(isinstance(item, str) for item in spec):
        if not spec:
            raise ValueError(f"restriction {name!r} names no parameter path")
        modes = [NONE] * len(paths)
        for pattern in spec:
            hits = [i for i, path in enumerate(paths) if _matches(path, pattern)]
            if not hits:
                raise ValueError(f"restriction {name!r}: no parameter at path {pattern!r}; "
                                 f"parameter paths: {', '.join(paths)}")
            for i in hits:
                modes[i] = ALL
        return Restriction(name, tuple(modes), (None,) * len(paths))
    mask_leaves, mask_def = jax.tree_util.tree_flatten(spec)
    if mask_def != jax.tree_util.tree_structure(template):
        raise ValueError(f"restriction {name!r}: the mask's structure {mask_def} is not the parameters' "
                         f"{jax.tree_util.tree_structure(template)}")
    modes, indices = [], []
    for path, shape, mask in zip(paths, shapes, mask_leaves):
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape not in ((), shape):
            raise ValueError(f"restriction {name!r}: mask at {path!r} must be a bool or a bool array of shape "
                             f"{shape}, got {mask.dtype} {mask.shape}")
        mask = np.broadcast_to(mask, shape)
        if mask.all():
            modes.append(ALL), indices.append(None)
        elif not mask.any():
            modes.append(NONE), indices.append(None)
        else:
            modes.append(SOME), indices.append(np.flatnonzero(mask.reshape(-1)).astype(np.int32))
    if all(mode == NONE for mode in modes):
        raise ValueError(f"restriction {name!r}: the mask selects no parameter")
    return Restriction(name, tuple(modes), tuple(indices))


def restrict(params, modes, indices):
    """The sampled coordinates u of `params` (frozen leaves None, partly sampled ones 1-D)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    picked = [leaf if mode == ALL else (None if mode == NONE else jnp.reshape(leaf, (-1,))[index])
              for leaf, mode, index in zip(leaves, modes, indices)]
    return treedef.unflatten(picked)


def merge(sampled, params, modes, indices):
    """`params` with the sampled coordinates `sampled` put back (the inverse of `restrict`)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    sampled_leaves = jax.tree_util.tree_leaves(sampled)
    merged, position = [], 0
    for leaf, mode, index in zip(leaves, modes, indices):
        if mode == NONE:
            merged.append(leaf)
            continue
        value = sampled_leaves[position]
        position += 1
        merged.append(value if mode == ALL else jnp.reshape(leaf, (-1,)).at[index].set(value).reshape(leaf.shape))
    return treedef.unflatten(merged)


class RestrictedOperand(NamedTuple):
    """The traced operand of a restricted kernel: the full posterior (centre = the checkpoint)
    and the flat indices of partly sampled leaves."""

    posterior: slt.TemperedPosterior
    indices: tuple


def restricted_posterior(operand: RestrictedOperand, modes) -> slt.TemperedPosterior:
    """p(u) ∝ exp(−nβ L_n(merge(u, w*)) − (γ/2)||u − u*||²) (the model prior, if any, is dropped)."""
    full = operand.posterior
    checkpoint, indices = full.center, operand.indices

    def restricted_loss(sampled, batch):
        return full.loss_fn(merge(sampled, checkpoint, modes, indices), batch)

    return slt.TemperedPosterior(restricted_loss, full.data, full.nbeta, restrict(checkpoint, modes, indices),
                                 full.localization if full.localized else 0.0)


def _restricted_kernel(operand: RestrictedOperand, *, sampler_name: str, modes: tuple, **hyperparameters):
    return slt.SAMPLERS[sampler_name](restricted_posterior(operand, modes), **hyperparameters)


def restricted_sampler(sampler_name: str, posterior: slt.TemperedPosterior, restriction: Restriction,
                       **hyperparameters) -> slt.Sampler:
    """A traced `slt.Sampler` of the restricted posterior, packable by `slt.sample_jobs` with the
    same restriction at other checkpoints. Its start is `restrict(w*, ...)`.

    Raises ValueError when the posterior has a model prior (not supported restricted)."""
    if posterior.prior is not None:
        raise ValueError("a restricted LLC samples without the model prior; build the posterior with prior=None")
    indices = tuple(None if index is None else jnp.asarray(index) for index in restriction.indices)
    operand = RestrictedOperand(posterior, indices)
    concrete = slt.make_sampler(sampler_name, restricted_posterior(operand, restriction.modes), **hyperparameters)
    recorded = dict(concrete.hyperparameters)
    traced_names = tuple(name for name, value in recorded.items() if isinstance(value, float))
    static = (("sampler_name", sampler_name), ("modes", restriction.modes)) + tuple(
        (name, value) for name, value in recorded.items() if name not in traced_names)
    kernel = TracedKernel(_restricted_kernel, static, traced_names)
    return concrete._replace(traced=kernel, operands=(operand, tuple(recorded[name] for name in traced_names)))


def restriction_table(restrictions: Mapping[str, Any] | None, template) -> list[Restriction]:
    """The full parameter set ("all") first, then each named restriction, checked."""
    if restrictions is not None and not isinstance(restrictions, Mapping):
        raise ValueError(f"restrict must be a mapping name -> paths or mask, got {type(restrictions).__name__}")
    full = Restriction("all", (ALL,) * len(jax.tree_util.tree_leaves(template)),
                       (None,) * len(jax.tree_util.tree_leaves(template)))
    table = [full]
    for name, spec in (restrictions or {}).items():
        if not isinstance(name, str) or not name or name == "all" or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"restriction name {name!r} must be a non-empty word (letters, digits, _ or -) "
                             "other than 'all'")
        table.append(make_restriction(name, spec, template))
    return table
