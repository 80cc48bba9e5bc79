"""The analytic observer: a positive control for violation of expectation that learns nothing.

Every VoE table reports it beside the learned model and the confound meters: it shows what the twins demand of
an observer that tracks objects and knows where they can be seen. It is hand-built (nothing here is trained)
and reads object identities from the segmentation pass and their depth from the depth pass (a still camera).

It scores each frame by the negative log-likelihood (nats) of what it sees under what it expected.

Per object (camera coordinates in metres: X right, Y down, Z along the view axis):

* **Motion**: ``theta = (P0, V, a)``: the 3D point under the centre of the object's image box at its median surface
  depth at the segment's first frame, a velocity per frame, and a deceleration ``a`` in [0, a_max] m/frame^2
  opposing V (sliding friction mu * g / fps^2; a stopped object stays stopped). Fitted by Levenberg-Marquardt to
  every frame of the current segment in which the object was seen, using only its *own* box edges (an edge that
  borders a nearer object or the image border is an occlusion edge and says nothing of the object: as it slides
  behind the occluder, the trailing edge is still exact while the visible centroid lags) and its median depth.
  The edges across an occluded side of a sliver narrower than half the object are a ball's chord there, not its
  extent: they are read outward, less certain (``round_slivers``; :meth:`Observer._own_edges`).
  Priors: V ~ N(0, v_prior / v_prior_div) per axis (things move across the view: small along Y and depth), a ~
  half-normal(a_prior) on [0, a_max].
  K samples are drawn from a Gaussian around the fit, ``inflate`` times wider than the Laplace posterior, and
  importance-weighted back to the fit's likelihood (weight: likelihood over proposal density). The weights undo the
  widening on average, so ``inflate`` sets how far into the tails the K samples reach, not the posterior's width:
  box edges are quantised to pixels and their errors correlate from frame to frame (shading, partial pixels, a
  rolling silhouette), and with too narrow a proposal no sample re-emerged at the time a speed read from a few
  pixels left possible. At the old 1.5 the observer was sure of the wrong time for small far objects (appear's added
  object, level 2's several objects).
* **Expected visibility**: a sample's predicted image box (its point +- half the metric size, projected) is visible
  iff a pixel of its core (full width, middle 60 % of rows) is inside the image and not covered in the current
  segmentation by an object nearer than the sample (the occluder panel, other objects; the room never occludes).
* **Likelihood**: hidden -> sum_k w_k (1 - v_k) with v_k in {eps, 1 - eps}; seen -> sum_k w_k v_k N(own edges |
  the sample's visible box (clipped by occluders), sigma_edge) N(median depth | sigma_z), the Gaussians as
  unnormalised kernels, and every frame's cost taken relative to the likeliest outcome (seen or hidden): a
  perfectly predicted frame costs 0 whether the object is seen or hidden, so the twins compare on equal footing
  (a continuous density's normaliser would otherwise set the price of seeing against that of not seeing). Hidden
  frames do not prune the samples (``hidden_evidence=0``, open-loop visibility): with full Bayesian pruning a vanish
  is explained away by the few samples that stop behind the occluder.
* **Overdue objects**: a hidden object whose samples, after expecting it hidden, expect it seen again (P(seen) >
  overdue_p) is late, not gone: it cannot have crossed the open ground unseen, so it slowed down behind the
  occluder. Its expected motion waits there (the samples' clock stops while it stays overdue): every further frame
  it stays hidden costs as much as the first, and when it comes out late it comes out where it was expected. Without
  this, once the samples had passed by, a vanished object cost nothing more while a late re-emergence cost a
  sighting nobody expected (the possible clip was the more surprising one).
* **Appearance**: robust Gaussian NLL of the mean colour against the running mean of its past colours (every frame
  with >= 3 pixels), and of (fill, log aspect, log metric area) against the running means from frames where it was
  seen whole (the same frames only); each allows for pixel quantisation (``shape_px``): the box's sides jump by
  whole pixels, its pixel count hardly (:meth:`Observer._shape`).
* **Segments**: when an observation is not explained
  (NLL > reinit_nll: a jump), the fit restarts from it (the motion samples, weights reset).
* **Changes of motion**: an object seen in the last frame too whose box the fit explains worse than ``change_nll``
  plus a Gaussian step (``change_px`` per edge) from its last box changed its motion in view (a collision, a bounce
  off another object): it costs that once and the fit restarts from the last frame. Without it a bounce cost every
  frame until one exceeded reinit_nll (level 2's collisions: hundreds of nats in possible clips). It does not apply to
  a re-emergence (not seen in the last frame), so an object that comes out early or late still pays for it.
* **New objects**: an id never seen before showing up after frame 0 costs -log p_enter at the image border,
  -log p_emerge from behind a nearer object (it must have been hidden since the start), -log p_pop in the open.
* **Solidity**: two tracked objects whose fitted 3D points come closer than the sum of their radii (minus a
  tolerance) cost a Gaussian penalty on the interpenetration.

:func:`observer_surprise` returns the per-frame surprise (frame 0 scores 0).

The module runs past 600 lines because the observer is one class whose fit, expected visibility and likelihood all
read the same tracks' samples and measured edges; split across modules they would share its private state.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ObserverConfig", "observer_surprise", "spliced_observer_surprise"]


# -- per-frame measurements ----------------------------------------------------------------------------------------
def focal(h: int, fov: float) -> float:
    """Focal length in pixels of an ``h``-pixel-high image with vertical field of view ``fov`` degrees."""
    return (h / 2.0) / np.tan(np.radians(fov) / 2.0)


def frame_measurements(rgb: np.ndarray, seg: np.ndarray, depth: np.ndarray, margin: float = 0.02) -> dict:
    """{id: dict(n, box=(x0, y0, x1, y1), z, color (3,), fill, clean)} for one frame."""
    H, W = seg.shape
    ids = np.unique(seg)
    ids = ids[ids != 0]
    out = {}
    if len(ids) == 0:
        return out
    d = depth.astype(np.float32)
    # nearer-neighbour occlusion edges: for each of the 4 neighbours, a pixel of another non-room id that is nearer
    pad_s = np.pad(seg, 1, constant_values=255)  # 255: outside the image (counts as occluding)
    pad_d = np.pad(d, 1, constant_values=-1.0)
    occ_dir = []  # up, down, left, right: the neighbour on that side is a nearer object or outside the image
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        ns = pad_s[dy : dy + H, dx : dx + W]
        nd = pad_d[dy : dy + H, dx : dx + W]
        occ_dir.append((ns != seg) & (ns != 0) & (nd < d - margin))
    occ_edge = occ_dir[0] | occ_dir[1] | occ_dir[2] | occ_dir[3]
    for oid in ids:
        m = seg == oid
        ys, xs = np.nonzero(m)
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        n = len(xs)
        out[int(oid)] = dict(
            n=n,
            box=np.array([x0, y0, x1, y1], np.float64),
            z=float(np.median(d[m])),
            color=rgb[m].reshape(-1, 3).mean(0) / 255.0,
            fill=n / float((x1 - x0) * (y1 - y0)),
            clean=not bool(occ_edge[m].any()),
            # which box edges (x0, y0, x1, y1) are the object's own: with an occluded side, only the edge opposite
            # it (partial silhouettes distort the others)
            trust=_trust([bool(o[m].any()) for o in occ_dir]),
            occ=np.array([bool(o[m].any()) for o in occ_dir]),  # up, down, left, right: a nearer thing borders it
        )
    return out


def _trust(occ):
    up, down, left, right = occ
    if not (up or down or left or right):
        return np.ones(4, bool)
    return np.array([right and not left, down and not up, left and not right, up and not down])


def clip_measurements(rgb, seg, depth):
    return [frame_measurements(r, s, d) for r, s, d in zip(rgb, seg, depth, strict=True)]


# -- the observer ---------------------------------------------------------------------------------------------------
@dataclass
class ObserverConfig:
    K: int = 128  # posterior samples per object
    eps: float = 0.03  # P(a sample's visibility prediction is wrong)
    sigma_edge: float = 1.0  # px, box edges
    sigma_z: float = 0.05  # m, median depth
    sigma_z_partial: float = 0.25  # m, median depth of a partly hidden object
    edge_floor: float = 0.2  # nats per trusted edge (and depth) a correct prediction costs anyway: subtracted
    far_edge: float = 3.2  # nats per edge an unexpected sighting costs (log of 64 px x the Gaussian's peak density)
    a_max: float = 1.0e-3  # m/frame^2 (mu ~ 0.09 at 30 fps)
    a_prior: float = 2.0e-4  # half-normal prior sd of the deceleration (mu ~ 0.02): things keep going unless seen
    # to slow down (train-split Occlusion: median 0 (rollers), 90 % quantile 5.5e-4 (sliders); prior_decel.py)
    v_prior: float = 0.1  # m/frame, prior sd of the velocity along X (image right)
    v_prior_div: tuple[float, float, float] = (1.0, 3.0, 10.0)  # the prior sd per axis is v_prior / this: things
    # roll and slide across the view on the floor (Occlusion moves every object along the camera's right vector),
    # so the velocity along Y (down) and Z (depth) is small; a partly seen object's median depth (sigma_z_partial)
    # would otherwise leave its depth speed free and spread its re-emergence over the whole panel
    hidden_evidence: float = 0.0  # how much a hidden frame prunes the samples that expected to see the object:
    # 1 = the Bayes filter (it explains a vanish away by the few samples that stop behind the occluder, so the
    # whole vanish costs -log P(tail) once); 0 = open-loop expectation (every frame it should be seen costs)
    fit_iters: int = 3
    refit_nll: float = 1.0  # refit after a seen frame that cost more than this (nats, before the edge floor)
    refit_every: int = 1  # else refit every this many seen frames (speed)
    inflate: float = 2.0  # proposal sd / posterior sd (box edges err together from frame to frame: see the docstring)
    sigma_color: float = 0.05  # per channel
    sigma_color_px: float = 0.3  # + this / sqrt(pixels)
    sigma_fill: float = 0.10
    sigma_logaspect: float = 0.15
    sigma_logarea: float = 0.2  # the metric area's own spread (a turning cube shows more or less of its sides)
    shape_px: float = 1.0  # px, uncertainty of a box edge in the shape terms (pixel quantisation of small objects)
    outlier: float = 1e-3  # weight of the broad component of the appearance terms (caps one frame's cost)
    p_enter: float = 0.05  # a new object walks in at the image border
    p_emerge: float = 1e-3  # a new object emerges from behind a nearer object (hidden since frame 0)
    p_pop: float = 1e-5  # a new object pops up in the open
    reinit_nll: float = 25.0  # nats: above this nothing explained the observation; restart the fit from it
    change_nll: float = 6.0  # nats a change of motion costs (a collision, a bounce) in an object seen in the last
    # frame too: its box there moved by N(0, change_px) per edge from the last one; 0 = off
    change_px: float = 1.5
    solidity_tol: float = 0.25  # fraction of the smaller radius two objects may overlap (measurement noise)
    sigma_solid: float = 0.03  # m, interpenetration beyond the tolerance
    solid_max_size: float = 0.8  # m: wider things (panels) are not checked
    min_px_color: int = 3
    overdue: bool = True  # a hidden object that the samples expected to see again (after they expected it hidden)
    # is late, not gone: its expected motion waits where it should come out, so every further frame it stays hidden
    # costs, and a late re-emergence there is no surprise (it slowed down behind the occluder)
    overdue_p: float = 0.9  # P(seen) above which a hidden object counts as overdue
    round_slivers: bool = True  # a sliver of a partly hidden object is read as the side of a ball: the edges across
    # its hidden side lie outside the sliver's (see Observer._own_edges); False: as a box's, where they are seen
    seed: int = 0


def _robust(nll: float, broad: float, outlier: float) -> float:
    """-log((1 - outlier) exp(-nll) + outlier exp(-broad))."""
    a, b = -nll + np.log1p(-outlier), -broad + np.log(outlier)
    m = max(a, b)
    return float(-(m + np.log(np.exp(a - m) + np.exp(b - m))))


def positions(theta: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """(K, T, 3) points of motions ``theta`` (K, 7) at times ``tau`` (T,) after the segment start: constant velocity
    with a deceleration along -V that stops the object (it never reverses)."""
    P0, V, a = theta[:, None, 0:3], theta[:, None, 3:6], np.maximum(theta[:, None, 6], 1e-12)
    s = np.linalg.norm(V, axis=-1)
    tt = np.minimum(tau[None, :], s / a)
    dist = s * tt - 0.5 * a * tt**2
    dirn = V / np.maximum(s, 1e-12)[..., None]
    return P0 + dirn * dist[..., None]


@dataclass
class Track:
    """One object: its current segment of observations, the fitted motion and samples of it, appearance refs."""

    oid: int
    t0: int  # first frame of the current segment (the fit's time origin)
    size: np.ndarray  # (2,) metric width, height of the box
    theta: np.ndarray  # (7,) P0 (3), V (3), a
    samples: np.ndarray  # (K, 7)
    logw: np.ndarray  # (K,) log weights from the hidden frames since the last visible one
    obs: list = field(default_factory=list)  # (t, box, trust, z)
    size_clean: bool = False
    sizes: list = field(default_factory=list)
    colors: list = field(default_factory=list)
    shapes: list = field(default_factory=list)  # (fill, log aspect, log metric area) of clean frames
    seen: int = 0
    gone: bool = False  # hidden where the samples expected it hidden since it was last seen
    delay: float = 0.0  # frames the object is overdue: hidden where the samples expected to see it

    @property
    def w(self) -> np.ndarray:
        w = np.exp(self.logw - self.logw.max())
        return w / w.sum()

    def mean_point(self, t: int) -> np.ndarray:
        return positions(self.theta[None], np.array([t - self.t0], float))[0, 0]


class Observer:
    def __init__(self, H: int, W: int, fov: float, cfg: ObserverConfig | None = None):
        self.H, self.W, self.f = H, W, focal(H, fov)
        self.cfg = cfg or ObserverConfig()
        self.rng = np.random.default_rng(self.cfg.seed)
        self.tracks: dict[int, Track] = {}

    # -- geometry -------------------------------------------------------------------------------------------------
    def backproject(self, u: float, v: float, z: float) -> np.ndarray:
        return np.array([(u - self.W / 2) / self.f * z, (v - self.H / 2) / self.f * z, z])

    def boxes(self, P: np.ndarray, size: np.ndarray) -> np.ndarray:
        """(..., 4) continuous image boxes (x0, y0, x1, y1) of points ``P`` (..., 3) with metric ``size``."""
        z = np.maximum(P[..., 2], 0.05)
        u = P[..., 0] / z * self.f + self.W / 2
        v = P[..., 1] / z * self.f + self.H / 2
        hw, hh = size[0] * self.f / (2 * z), size[1] * self.f / (2 * z)
        return np.stack([u - hw, v - hh, u + hw, v + hh], -1)

    def visible_boxes(self, boxes: np.ndarray, free: np.ndarray):
        """Per box (K, 4): visible (bool: a free pixel in its core), and the bbox of the free pixels in it."""
        H, W = free.shape
        K = len(boxes)
        c = (boxes[:, [0, 1]] + boxes[:, [2, 3]]) / 2
        half = (boxes[:, [2, 3]] - boxes[:, [0, 1]]) / 2
        core = half * [1.0, 0.6]  # silhouettes reach the box's sides in its middle rows, not in its corners
        lo = np.ceil(boxes[:, [0, 1]] - 0.5).astype(int)
        hi = np.floor(boxes[:, [2, 3]] - 0.5).astype(int)
        clo = np.ceil(c - core - 0.5).astype(int)
        chi = np.floor(c + core - 0.5).astype(int)
        mid = np.floor(c).astype(int)
        for L, Hh in ((lo, hi), (clo, chi)):  # a box narrower than a pixel still covers its centre's pixel
            thin = Hh < L
            L[thin] = mid[thin]
            Hh[thin] = mid[thin]
        lim = np.array([W - 1, H - 1])
        x0, y0 = np.clip(lo, 0, lim).T
        x1, y1 = np.clip(hi, 0, lim).T
        cx0, cy0 = np.clip(clo, 0, lim).T
        cx1, cy1 = np.clip(chi, 0, lim).T
        inside = (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] <= W - 1) & (lo[:, 1] <= H - 1)
        cinside = (chi[:, 0] >= 0) & (chi[:, 1] >= 0) & (clo[:, 0] <= W - 1) & (clo[:, 1] <= H - 1)
        S = np.zeros((H + 1, W + 1))
        S[1:, 1:] = free.cumsum(0).cumsum(1)
        cnt = S[cy1 + 1, cx1 + 1] - S[cy0, cx1 + 1] - S[cy1 + 1, cx0] + S[cy0, cx0]
        vis = inside & cinside & (cnt > 0)
        CS = np.zeros((H + 1, W))
        CS[1:] = free.cumsum(0)
        RS = np.zeros((H, W + 1))
        RS[:, 1:] = free.cumsum(1)
        colfree = CS[y1 + 1] - CS[y0]  # (K, W)
        rowfree = RS[:, x1 + 1].T - RS[:, x0].T  # (K, H)
        cols, rows = np.arange(W), np.arange(H)
        colok = (colfree > 0) & (cols >= x0[:, None]) & (cols <= x1[:, None])
        rowok = (rowfree > 0) & (rows >= y0[:, None]) & (rows <= y1[:, None])
        anyc, anyr = colok.any(1), rowok.any(1)
        vis &= anyc & anyr
        vb = np.zeros((K, 4))
        vb[:, 0] = np.where(anyc, colok.argmax(1), 0)
        vb[:, 2] = np.where(anyc, W - colok[:, ::-1].argmax(1), 0)
        vb[:, 1] = np.where(anyr, rowok.argmax(1), 0)
        vb[:, 3] = np.where(anyr, H - rowok[:, ::-1].argmax(1), 0)
        return vis, vb

    # -- tracks ---------------------------------------------------------------------------------------------------
    def _new_track(self, oid: int, m: dict, t: int) -> Track:
        cfg, K = self.cfg, self.cfg.K
        b, z = m["box"], m["z"]
        P0 = self.backproject((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, z)
        size = np.array([(b[2] - b[0]) * z / self.f, (b[3] - b[1]) * z / self.f])
        theta = np.concatenate([P0, np.zeros(3), [cfg.a_max / 2]])
        return Track(oid, t, size, theta, np.tile(theta, (K, 1)), np.zeros(K), size_clean=m["clean"])

    def _residuals(self, tr: Track, theta: np.ndarray, data, cv: bool = False) -> np.ndarray:
        """(K, R) residuals (data, then priors) of motions ``theta`` (K, 7); ``cv``: without the deceleration."""
        cfg = self.cfg
        tau, boxes, trust, z, sz, se = data
        if cv:
            P = theta[:, None, 0:3] + theta[:, None, 3:6] * tau[None, :, None]
        else:
            P = positions(theta, tau)
        pb = self.boxes(P, tr.size)  # (K, T, 4)
        K = len(theta)
        r = [((pb - boxes[None]) / se[None])[:, trust], (P[..., 2] - z[None]) / sz[None]]
        r.append(theta[:, 3:6] / cfg.v_prior * np.asarray(cfg.v_prior_div))
        r.append((theta[:, 6] / cfg.a_prior)[:, None])
        return np.concatenate([x.reshape(K, -1) for x in r], 1)

    def _fit(self, tr: Track) -> None:
        """Levenberg-Marquardt on the segment's observations, then K posterior samples: drawn from a Gaussian
        around the fit (covariance from the constant-velocity Jacobian, which stays informative where the stop
        makes the full model flat, e.g. an object at rest), importance-weighted by the full model's likelihood."""
        cfg = self.cfg
        data = (
            np.array([o[0] - tr.t0 for o in tr.obs], float),
            np.array([o[1] for o in tr.obs]),
            np.array([o[2] for o in tr.obs]),
            np.array([o[3] for o in tr.obs]),
            np.array([cfg.sigma_z if o[2].all() else cfg.sigma_z_partial for o in tr.obs]),
            np.array([o[4] for o in tr.obs]),
        )
        th = tr.theta.copy()
        h = np.array([1e-4] * 6 + [1e-6])
        eye = np.eye(7)

        def jac(th, r, cv=False):
            R = self._residuals(tr, th[None] + eye * h[:, None], data, cv)
            return ((R - r[None]) / h[:, None]).T

        def res(th, cv=False):
            return self._residuals(tr, th[None], data, cv)[0]

        lam = 1e-3
        r = res(th)
        for _ in range(cfg.fit_iters):
            J = jac(th, r)
            A, g = J.T @ J, J.T @ r
            improved = False
            for _ in range(5):
                cand = th + np.linalg.solve(A + lam * np.diag(np.diag(A) + 1e-9), -g)
                cand[6] = np.clip(cand[6], 0.0, cfg.a_max)
                rc = res(cand)
                if rc @ rc < r @ r - 1e-9:
                    th, r, lam, improved = cand, rc, lam * 0.3, True
                    break
                lam *= 10
            if not improved:
                break
        tr.theta = th
        Jf = jac(th, r)
        rcv = res(th, cv=True)
        Jc = jac(th, rcv, cv=True)
        Jc[:, 6] = Jf[:, 6]
        cov = np.linalg.inv(Jc.T @ Jc + np.diag([1e-6] * 6 + [1.0 / cfg.a_prior**2])) * cfg.inflate**2
        cov = 0.5 * (cov + cov.T) + 1e-14 * eye
        L = np.linalg.cholesky(cov)
        Z = self.rng.standard_normal((cfg.K, 7))
        Z[0] = 0.0  # keep the fit itself among the samples
        S = th + Z @ L.T
        S[:, 6] = np.abs(S[:, 6])  # reflect into [0, a_max] (the proposal density is then approximate)
        S[:, 6] = np.clip(np.where(S[:, 6] > cfg.a_max, 2 * cfg.a_max - S[:, 6], S[:, 6]), 0.0, cfg.a_max)
        R = self._residuals(tr, S, data)
        logw = -0.5 * (R**2).sum(1) + 0.5 * (Z**2).sum(1)
        tr.samples = S
        tr.logw = logw - logw.max()

    # -- one frame ------------------------------------------------------------------------------------------------
    def frame(self, t: int, meas: dict, seg: np.ndarray, depth: np.ndarray) -> tuple[float, dict]:
        cfg = self.cfg
        terms: dict[str, float] = {}
        if t == 0:
            for oid, m in meas.items():
                self._start(oid, m, t)
            return 0.0, terms
        total = 0.0
        for oid, tr in self.tracks.items():
            w = tr.w
            P = positions(tr.samples, np.array([t - tr.t0 - tr.delay], float))[:, 0]
            zbar = float((w * P[:, 2]).sum())
            free = ~((seg != 0) & (seg != oid) & (depth < zbar - 0.05))
            vis, vb = self.visible_boxes(self.boxes(P, tr.size), free)
            pv = np.where(vis, 1 - cfg.eps, cfg.eps)
            m = meas.get(oid)
            p_seen = float((w * pv).sum())
            mode = np.log(max(p_seen, 1 - p_seen))  # the likeliest outcome's log-probability: it scores 0
            if m is None:
                ll = np.log(1 - pv)
                nll = -float(np.log(1 - p_seen)) + mode
                terms[f"hidden{oid}"] = nll
                tr.logw = tr.logw + cfg.hidden_evidence * ll
                if p_seen < 0.5:
                    tr.gone = True
                elif cfg.overdue and tr.gone and p_seen > cfg.overdue_p:
                    tr.delay += 1.0
            else:
                m = {**m, **self._own_edges(tr, m)}
                trust = m["trust"]
                ne = int(trust.sum())
                err = ((vb - m["edges"]) / m["sd"])[:, trust]
                # unnormalised kernels: a perfectly predicted observation scores 0 beyond -log P(seen); a sample
                # that expected the object hidden explains its edges no better than a uniform guess over the image
                ll_edges = np.where(vis, -0.5 * (err**2).sum(1), -ne * cfg.far_edge)
                sz = cfg.sigma_z if m["clean"] else cfg.sigma_z_partial  # a part's depth is not the whole's
                ll_z = -0.5 * ((P[:, 2] - m["z"]) / sz) ** 2
                ll = np.log(pv) + ll_edges + ll_z
                mx = ll.max()
                nll = -float(mx + np.log((w * np.exp(ll - mx)).sum())) + mode
                # the expected cost of a correct prediction (pixel quantisation of the edges) is not a surprise
                raw = nll
                nll = max(0.0, nll - cfg.edge_floor * (ne + 1))
                terms[f"seen{oid}"] = nll
                for k, v in self._appearance(tr, m).items():
                    terms[f"{k}{oid}"] = v
                    total += v
                tr.delay, tr.gone = 0.0, False
                last = tr.obs[-1] if tr.obs else None
                changed = False
                if cfg.change_nll > 0 and last is not None and last[0] == t - 1 and nll > cfg.change_nll:
                    # seen in the last frame too: a new motion from where it just was (a collision, a bounce)
                    both = trust & last[2]
                    alt = cfg.change_nll + 0.5 * float((((m["box"] - last[1]) / cfg.change_px)[both] ** 2).sum())
                    if alt < nll:
                        nll, changed = alt, True
                        terms[f"seen{oid}"] = nll
                if changed:  # restart the motion fit from the last frame, at rest
                    tr.t0, tr.obs = last[0], [last]
                    b = last[1]
                    tr.theta = np.concatenate(
                        [self.backproject((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, last[3]), np.zeros(3), tr.theta[6:]]
                    )
                elif nll > cfg.reinit_nll:  # a jump: restart the motion fit from here
                    tr.t0, tr.obs = t, []
                    b = m["box"]
                    tr.theta = np.concatenate(
                        [self.backproject((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, m["z"]), tr.theta[3:]]
                    )
                self._absorb(
                    tr, m, t, refit=len(tr.obs) < 10 or len(tr.obs) % cfg.refit_every == 0 or raw > cfg.refit_nll
                )
            total += nll
        for oid, m in meas.items():  # never-seen objects
            if oid in self.tracks:
                continue
            b = m["box"]
            if b[0] <= 0 or b[1] <= 0 or b[2] >= self.W or b[3] >= self.H:
                c = -np.log(cfg.p_enter)
            elif not m["clean"]:
                c = -np.log(cfg.p_emerge)
            else:
                c = -np.log(cfg.p_pop)
            terms[f"new{oid}"] = float(c)
            total += c
            self._start(oid, m, t)
        total += self._solidity(t, terms, set(meas))
        return float(total), terms

    def _own_edges(self, tr: Track, m: dict) -> dict:
        """The box edges of a seen object as evidence of where its whole silhouette's edges are: ``edges`` (4,),
        their uncertainty ``sd`` (px) and which of them are its own (``trust``), given the size it is known to have.

        Beside an occluded side, the edges across it are the silhouette's extent only where the visible part holds
        the object's widest line. A ball is tallest at its centre column: a sliver of its side ``s`` px wide (its
        innermost pixel drawn where the ball covers that pixel's centre, ``s - 1/2`` px in) is shorter than the
        ball by ``r - sqrt(2 r s - s^2)`` at each end (``r`` its radius in px, from the size it is known to have),
        a box's is not, so each of these edges lies between where it is seen and that far outside it: it is read
        half that far outside, uncertain by as much again (on top of ``sigma_edge``). A corner (hidden on two
        sides) is a sliver both ways. Read as the ball's own, the top of a one-pixel sliver (a pixel or two low as
        the ball slides into sight, or out of it) tilted the fitted motion downward, and over the 80 frames behind
        the occluder appear's small added object was expected to sink out of sight under the object in front of
        it (level 0 appear). Which edges are the object's own (``trust``) is unchanged."""
        cfg = self.cfg
        trust, edges, sd = m["trust"].copy(), m["box"].copy(), np.full(4, cfg.sigma_edge)
        if m["clean"] or not cfg.round_slivers:
            return {"trust": trust, "edges": edges, "sd": sd}
        up, down, left, right = m["occ"]
        b = m["box"]
        ew, eh = tr.size * self.f / max(m["z"], 1e-3)  # the whole silhouette's size in px at this depth
        for side, s, r, ends in (
            (left or right, b[2] - b[0], ew / 2, (1, 3)),
            (up or down, b[3] - b[1], eh / 2, (0, 2)),
        ):
            if side and s < r:
                s = max(s - 0.5, 0.0)  # the sliver's innermost pixel is drawn where the ball covers its centre
                short = (r - np.sqrt(max(2 * r * s - s * s, 0.0))) / 2
                edges[ends[0]] -= short
                edges[ends[1]] += short
                sd[list(ends)] = np.hypot(cfg.sigma_edge, short)
        return {"trust": trust, "edges": edges, "sd": sd}

    def _start(self, oid: int, m: dict, t: int) -> None:
        self.tracks[oid] = tr = self._new_track(oid, m, t)
        self._absorb(tr, m, t)

    def _solidity(self, t: int, terms: dict, seen: set) -> float:
        cfg, cost = self.cfg, 0.0
        # compact objects seen in this frame only (an occluder panel's depth extent is not its width; two hidden
        # objects' extrapolated points are not evidence of anything)
        ids = [o for o, tr in self.tracks.items() if tr.seen >= 3 and tr.size[0] < cfg.solid_max_size and o in seen]
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                A, B = self.tracks[ids[i]], self.tracks[ids[j]]
                pa, pb = A.mean_point(t), B.mean_point(t)
                ra, rb = A.size[0] / 2, B.size[0] / 2
                d = np.linalg.norm((pa - pb)[[0, 2]])
                over = (ra + rb) - d - cfg.solidity_tol * min(ra, rb)
                if over > 0:
                    c = 0.5 * (over / cfg.sigma_solid) ** 2
                    terms[f"solid{ids[i]}-{ids[j]}"] = c
                    cost += c
        return cost

    def _absorb(self, tr: Track, m: dict, t: int, refit: bool = True) -> None:
        """Add a seen frame: appearance references, metric size, and the motion fit."""
        tr.seen += 1
        b = m["box"]
        if m["n"] >= self.cfg.min_px_color:
            tr.colors.append(m["color"])
        wm, hm = (b[2] - b[0]) * m["z"] / self.f, (b[3] - b[1]) * m["z"] / self.f
        if m["clean"]:
            tr.sizes.append((wm, hm))
            tr.size = np.median(np.array(tr.sizes), 0)
            tr.size_clean = True
            tr.shapes.append(self._shape(m))
        elif not tr.size_clean:
            tr.size = np.maximum(tr.size, (wm, hm))
        if "edges" not in m:  # a new track: nothing known of its size yet
            m = {**m, "edges": m["box"], "sd": np.full(4, self.cfg.sigma_edge)}
        tr.obs.append((t, m["edges"], m["trust"], m["z"], m["sd"]))
        if refit:
            self._fit(tr)

    def _appearance(self, tr: Track, m: dict) -> dict:
        cfg, out = self.cfg, {}
        if tr.colors and m["n"] >= cfg.min_px_color:
            ref = np.mean(tr.colors, 0)
            sig = cfg.sigma_color + cfg.sigma_color_px / np.sqrt(m["n"])  # slivers are shaded differently
            nll = 0.5 * (((m["color"] - ref) / sig) ** 2).sum()
            out["color"] = _robust(nll, 0.0, cfg.outlier)
        if m["clean"] and len(tr.shapes) >= 2:
            b = m["box"]
            x = self._shape(m)
            ref = np.mean(tr.shapes, 0)
            # a box edge is uncertain by about a pixel: in a few-pixel silhouette that dwarfs the shape's own spread
            wp, hp = max(b[2] - b[0], 1.0) / cfg.shape_px, max(b[3] - b[1], 1.0) / cfg.shape_px
            # the pixel count changes only where an edge crosses pixel centres, a whole row or column of it at
            # worst: each of the four edges (lengths w, h) adds or drops up to its length, sd length / sqrt(12)
            n_sd = cfg.shape_px * np.sqrt(((b[2] - b[0]) ** 2 + (b[3] - b[1]) ** 2) / 6.0)
            quant = np.array([1 / wp + 1 / hp, np.hypot(1 / wp, 1 / hp), n_sd / max(m["n"], 1)])
            sig = np.hypot([cfg.sigma_fill, cfg.sigma_logaspect, cfg.sigma_logarea], quant)
            nll = 0.5 * (((x - ref) / sig) ** 2).sum()
            out["shape"] = _robust(nll, 0.0, cfg.outlier)
        return out

    def _shape(self, m: dict) -> np.ndarray:
        """(fill, log aspect, log metric area) of a clean silhouette. Its size is its metric area (pixels times
        (z / f)^2), not its box's width and height: at 64 x 64 a small box gains or loses a whole column or row as the
        object slides by a fraction of a pixel (a 4-pixel cube is measured 5 wide in one frame, 4 in the next, and
        a cube turning about the vertical shows a wider box again), a quarter of its width each time, while the
        number of pixels it covers hardly changes (as it slides, what one side gains the other loses). As two box
        sizes, each uncertain by a pixel, a cube that came out turned cost more than a ball of half its area coming
        out in its place (level 1 shape_change)."""
        b, z = m["box"], m["z"]
        wm, hm = (b[2] - b[0]) * z / self.f, (b[3] - b[1]) * z / self.f
        return np.array([m["fill"], np.log(hm / wm), np.log(m["n"] * (z / self.f) ** 2)])


def observer_surprise(rgb, seg, depth, fov, cfg: ObserverConfig | None = None, meas=None, return_terms=False):
    """Per-frame surprise (T,) of a clip (frame 0 scores 0): the analytic observer's negative log-likelihood."""
    seg = np.asarray(seg)
    depth = np.asarray(depth, np.float32)
    if meas is None:
        meas = clip_measurements(rgb, seg, depth)
    H, W = seg.shape[1:]
    obs = Observer(H, W, fov, cfg)
    out, terms = [], []
    for t in range(len(seg)):
        s, tm = obs.frame(t, meas[t], seg[t], depth[t])
        out.append(s)
        terms.append(tm)
    return (np.array(out), terms) if return_terms else np.array(out)


def spliced_observer_surprise(rgb, seg, depth, fov, cut: int, cfg: ObserverConfig | None = None) -> np.ndarray:
    """Per-frame surprise ``(4, T)`` of two clips ``A``, ``B`` (``rgb``, ``seg``, ``depth``: two clips each) and of
    their splices at ``cut``, in the order ``A, B, A|B, B|A`` (``A|B`` is ``A`` up to frame ``cut``, then ``B``: an
    IntPhys quadruplet): each row equals :func:`observer_surprise` of that clip, bit for bit.

    The observer is causal (frame ``t`` reads frames up to ``t`` and its own random numbers, drawn in frame order),
    so on ``A|B`` it is, up to ``cut``, in the state it reached on ``A``: each prefix is observed once and the
    observer copied at the cut, and each clip's measurements are taken once."""
    seg = [np.asarray(s) for s in seg]
    depth = [np.asarray(d, np.float32) for d in depth]
    meas = [clip_measurements(r, s, d) for r, s, d in zip(rgb, seg, depth, strict=True)]
    H, W = seg[0].shape[1:]
    out: list[list[float]] = [[], [], [], []]
    for x, y in ((0, 1), (1, 0)):
        obs = Observer(H, W, fov, cfg)
        for t in range(min(cut, len(seg[x]))):
            out[x].append(obs.frame(t, meas[x][t], seg[x][t], depth[x][t])[0])
        out[2 + x] = list(out[x])
        fork = copy.deepcopy(obs)
        for t in range(len(out[x]), len(seg[x])):
            out[x].append(obs.frame(t, meas[x][t], seg[x][t], depth[x][t])[0])
        for t in range(len(out[2 + x]), len(seg[y])):
            out[2 + x].append(fork.frame(t, meas[y][t], seg[y][t], depth[y][t])[0])
    return np.array(out)
