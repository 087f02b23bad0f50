// Zones and lines of a camera, checked before they are sent: the same things the service
// refuses or warns about, said where the admin draws.  Coordinates are frame pixels.

// z of (a - o) x (b - o): > 0 when b lies to the left of o -> a in image coordinates.
export const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

function onSegment(p, q, r) {  // q collinear with p-r: whether q lies on the segment
  return Math.min(p[0], r[0]) <= q[0] && q[0] <= Math.max(p[0], r[0])
    && Math.min(p[1], r[1]) <= q[1] && q[1] <= Math.max(p[1], r[1]);
}
// Whether segments p1-p2 and q1-q2 meet (touching and overlapping included).
export function segmentsMeet(p1, p2, q1, q2) {
  const d1 = cross(q1, q2, p1), d2 = cross(q1, q2, p2), d3 = cross(p1, p2, q1), d4 = cross(p1, p2, q2);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) return true;
  return (d1 === 0 && onSegment(q1, p1, q2)) || (d2 === 0 && onSegment(q1, p2, q2))
    || (d3 === 0 && onSegment(p1, q1, p2)) || (d4 === 0 && onSegment(p1, q2, p2));
}
// Whether a closed polygon's edges cross each other (edges that share a vertex are not compared).
export function selfIntersects(points) {
  const n = points.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (j === i + 1 || (i === 0 && j === n - 1)) continue;  // neighbours share a vertex
      if (segmentsMeet(points[i], points[(i + 1) % n], points[j], points[(j + 1) % n])) return true;
    }
  }
  return false;
}
const inside = (p, w, h) => p[0] >= 0 && p[0] <= w && p[1] >= 0 && p[1] <= h;
const area = (pts) => Math.abs(pts.reduce((s, p, i) => s + cross([0, 0], p, pts[(i + 1) % pts.length]), 0)) / 2;

// Problems of a camera's zones and lines, in words naming each; frame: {width, height} or null.
export function shapeProblems(zones, lines, frame) {
  const out = [];
  const names = new Map();
  for (const [kind, list] of [["zone", zones], ["line", lines]]) {
    list.forEach((s, i) => {
      const name = String(s.name || "").trim();
      const label = name ? `${kind} "${name}"` : `${kind} ${i + 1}`;
      if (!name) out.push(`The ${label} has no name.`);
      else if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
        out.push(`The ${label}: a name is letters, digits, "_", "." or "-" (at most 64, no spaces).`);
      } else if (names.has(`${kind}:${name}`)) out.push(`Two ${kind}s are named "${name}": names must differ.`);
      names.set(`${kind}:${name}`, true);
      const pts = kind === "zone" ? s.polygon : s.points;
      if (kind === "zone" && pts.length < 3) out.push(`The ${label} has ${pts.length} vertices: it needs at least 3.`);
      if (kind === "line" && pts.length !== 2) out.push(`The ${label} needs exactly 2 points.`);
      if (frame && pts.some((p) => !inside(p, frame.width, frame.height))) {
        out.push(`The ${label} goes outside the picture (${frame.width}x${frame.height}): move its points inside.`);
      }
      if (kind === "zone" && pts.length >= 3) {
        if (selfIntersects(pts)) out.push(`The ${label} crosses itself: move its vertices so its edges do not cross.`);
        else if (area(pts) < 1) out.push(`The ${label} has no area.`);
      }
      if (kind === "line" && pts.length === 2 && pts[0][0] === pts[1][0] && pts[0][1] === pts[1][1]) {
        out.push(`The ${label} has both points in one place.`);
      }
    });
  }
  return out;
}

// The unit normal of line a -> b pointing to its "+" side (where cross(b - a, q - a) > 0:
// an object crossing to that side crosses in direction "+").
export function plusNormal(a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1], len = Math.hypot(dx, dy) || 1;
  return [-dy / len, dx / len];
}

// A name not yet used among `taken`: "<base>-1", "<base>-2", ...
export function freshName(base, taken) {
  for (let i = 1; ; i++) if (!taken.includes(`${base}-${i}`)) return `${base}-${i}`;
}
