"""Estimated normals checked against a flood fill of the free space around the points.

Propagating signs along a minimum spanning tree (:func:`rbfield.geometry.point_normals.orient_normals`)
goes wrong where the tree crosses a thin part from one side to the other: everything beyond the
crossing comes out inside out. On 20,000 noisy points of CGAL's cow, both hind legs below the knee,
the tail and the horns did (7.7 % of the points), and the SDF fit lost parts of them.

A flood fill of free space (:class:`rbfield.geometry.enclosure.Enclosure`) knows outside from inside
without any normal, away from the points. So each point looks along its normal both ways
(:meth:`~rbfield.geometry.enclosure.Enclosure.ray_sides`): free space outside ahead, or inside
behind, says the normal is right; inside ahead, or outside behind, says it is wrong; both or neither
says nothing (a part too thin for free space inside it, or a ray that crosses another part first).
One point's verdict can be wrong, so each point counts the verdicts of its VOTE_NEIGHBOURS nearest
points (itself included), each turned by whether that neighbour's normal agrees with its own, and
turns its normal if they say wrong on balance.

On 20,000 points sampled from eight meshes with noise of 0.25 % of the diagonal
(bench/normal_orientation.py), this took the share of normals pointing in from 5.9 % to 2.1 % on the
cow, 1.6 % to 1.2 % on the armadillo and 2.1 % to 1.8 % on the camel, and moved no other mesh by more
than 0.05 points; on clean points it costs the camel and the armadillo 0.2 points, on their thin parts
(BENCHMARKS.md, "Raw points: normals estimated and oriented").

Memory O(N k) a chunk at a time, besides the enclosure's grid. Time: loading 2 million noisy points
took 77 s with the check, 67 s without (BENCHMARKS.md, "Raw points at scale").
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from rbfield.geometry.enclosure import INSIDE, OUTSIDE, Enclosure
from rbfield.geometry.point_normals import neighbour_chunks
from rbfield.geometry.surfel_distance import SurfelDistance

#: Points whose verdicts each point counts (itself included).
VOTE_NEIGHBOURS = 32


def verdicts(enclosure: Enclosure, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """(N,) +1 where free space says a normal points out, -1 where it says in, 0 where it says nothing.

    Args:
        enclosure: the flood fill around ``points``; points: (N, 3); normals: (N, 3) unit normals.
    """
    ahead, behind = enclosure.ray_sides(points, normals), enclosure.ray_sides(points, -normals)
    right = (ahead == OUTSIDE) | (behind == INSIDE)
    wrong = (ahead == INSIDE) | (behind == OUTSIDE)
    return right.astype(np.int8) - wrong.astype(np.int8)


def turn_by_flood(
    enclosure: Enclosure, points: np.ndarray, normals: np.ndarray, tree: cKDTree | None = None
) -> tuple[np.ndarray, int]:
    """Normals turned where their neighbourhood's :func:`verdicts` say they point in.

    Args:
        enclosure: the flood fill around ``points`` (nothing is turned when it is not sealed);
        points: (N, 3); normals: (N, 3) consistently oriented unit normals; tree: a cKDTree of ``points``.

    Returns:
        (N, 3) normals and how many were turned.
    """
    if not enclosure.sealed:
        return normals, 0
    votes = verdicts(enclosure, points, normals).astype(np.float64)
    tree = tree or cKDTree(points)
    turn = np.zeros(len(points), bool)
    for start, _, indices in neighbour_chunks(tree, points, VOTE_NEIGHBOURS):
        own = normals[start : start + len(indices)]
        agreement = np.sign(np.einsum("ckj,cj->ck", normals[indices], own))
        turn[start : start + len(indices)] = (votes[indices] * agreement).sum(axis=1) < 0
    return np.where(turn[:, None], -normals, normals), int(turn.sum())


def check_normals(points: np.ndarray, normals: np.ndarray, tree: cKDTree | None = None) -> tuple[np.ndarray, int]:
    """:func:`turn_by_flood` against the flood fill that the oriented points themselves give.

    Args:
        points: (N, 3); normals: (N, 3) consistently oriented unit normals; tree: a cKDTree of ``points``.

    Returns:
        (N, 3) normals and how many were turned.
    """
    return turn_by_flood(Enclosure(SurfelDistance(points, normals)), points, normals, tree)
