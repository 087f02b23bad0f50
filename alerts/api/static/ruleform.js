// A rule's form, built from its type's JSON Schema (GET /api/v1/rule-types): numbers with
// their bounds, integers, strings, enums as selects, booleans as checkboxes, lists of
// choices as checkbox groups, lists of words (classes) as comma-separated text, fixed pairs
// of numbers (a direction) as two numbers.  A field naming a zone or a line is a select of
// the camera's zones or lines.  What the form cannot edit (a schedule) is kept as it was.
import { el } from "./text.js";

const SET_BY_VIEW = new Set(["type", "camera"]);  // the type chosen, the camera edited

// The schema of a property without its "or null" (anyOf [X, null]); nullable noted.
function resolve(prop) {
  if (!Array.isArray(prop.anyOf)) return { ...prop, nullable: false };
  const others = prop.anyOf.filter((p) => p.type !== "null");
  if (others.length !== 1) return { ...prop, kind: "keep", nullable: true };
  return { ...others[0], title: prop.title, description: prop.description, default: prop.default, nullable: true };
}
function kindOf(name, p) {
  if (p.kind) return p.kind;
  if (name === "zone" || name === "line") return name;
  if (Array.isArray(p.enum)) return "enum";
  if (p.type === "boolean") return "boolean";
  if (p.type === "integer" || p.type === "number") return "number";
  if (p.type === "string") return "text";
  if (p.type === "array") {
    const items = p.items || {};
    if (Array.isArray(items.enum)) return "choices";
    if (items.type === "string") return "words";
    if (Array.isArray(p.prefixItems) && p.prefixItems.every((x) => x.type === "number" || x.type === "integer")) return "pair";
  }
  return "keep";
}
const titleOf = (name, p) => p.title || name.replaceAll("_", " ");
function bounds(p) {
  const parts = [];
  const lo = p.minimum ?? p.exclusiveMinimum, hi = p.maximum ?? p.exclusiveMaximum;
  if (lo !== undefined) parts.push(`${p.exclusiveMinimum !== undefined ? "more than" : "at least"} ${lo}`);
  if (hi !== undefined) parts.push(`${p.exclusiveMaximum !== undefined ? "less than" : "at most"} ${hi}`);
  if (p.type === "integer") parts.push("a whole number");
  return parts.join(", ");
}

// One field: its element and how to read it ({value} or {problem}; value undefined: unset).
function field(name, p, required, have, ctx) {
  const id = `rule-f-${name}`, hintId = `${id}-hint`;
  const kind = kindOf(name, p);
  const title = titleOf(name, p) + (required ? " (required)" : "");
  const value = have !== undefined ? have : p.default;
  const hint = [p.description, kind === "number" ? bounds(p) : ""].filter(Boolean).join(" — ");
  const hintEl = el("p", { class: "hint field-hint", id: hintId }, hint);
  const described = hint ? hintId : null;
  const row = (control) => el("div", { class: "field", "data-field": name },
    el("label", { for: id }, title), control, hint ? hintEl : null);

  if (kind === "zone" || kind === "line" || kind === "enum") {
    const choices = kind === "enum" ? p.enum.map(String) : (kind === "zone" ? ctx.zones : ctx.lines);
    const select = el("select", { id, "aria-describedby": described },
      required && value !== undefined ? null : el("option", { value: "" }, kind === "enum" ? "(default)" : `(no ${kind})`),
      choices.map((c) => el("option", { value: c }, c)));
    if (value !== undefined && value !== null && !choices.includes(String(value))) {
      select.append(el("option", { value: String(value) }, `${value} (missing)`));
    }
    select.value = value === undefined || value === null ? "" : String(value);
    if (required && kind !== "enum" && choices.length === 0) select.append(el("option", { value: "" }, `(draw a ${kind} first)`));
    return { el: row(select), read: () => ({ value: select.value === "" ? undefined : select.value }) };
  }
  if (kind === "boolean") {
    const box = el("input", { id, type: "checkbox", "aria-describedby": described });
    box.checked = Boolean(value);
    return { el: el("div", { class: "field check", "data-field": name }, box, el("label", { for: id }, title), hint ? hintEl : null),
      read: () => ({ value: box.checked }) };
  }
  if (kind === "number") {
    const input = el("input", { id, type: "number", inputmode: "decimal", "aria-describedby": described,
      step: p.type === "integer" ? "1" : "any", min: p.minimum ?? p.exclusiveMinimum, max: p.maximum ?? p.exclusiveMaximum,
      value: value === undefined || value === null ? "" : String(value) });
    return { el: row(input), read: () => readNumber(input.value.trim(), p, titleOf(name, p)) };
  }
  if (kind === "text") {
    const input = el("input", { id, "aria-describedby": described, maxlength: p.maxLength ?? 256,
      value: value === undefined || value === null ? "" : String(value) });
    return { el: row(input), read: () => ({ value: input.value.trim() === "" ? undefined : input.value.trim() }) };
  }
  if (kind === "words") {
    const input = el("input", { id, "aria-describedby": described, placeholder: "comma-separated, e.g. person, car",
      value: Array.isArray(value) ? value.join(", ") : "" });
    return { el: row(input), read: () => {
      const words = input.value.split(",").map((w) => w.trim()).filter(Boolean);
      return { value: words.length ? words : undefined };
    } };
  }
  if (kind === "choices") {
    const boxes = p.items.enum.map((c, i) => {
      const box = el("input", { id: `${id}-${i}`, type: "checkbox", value: String(c) });
      box.checked = Array.isArray(value) && value.includes(c);
      return [box, el("label", { for: `${id}-${i}` }, String(c))];
    });
    const set = el("fieldset", { class: "field choices", "data-field": name, "aria-describedby": described },
      el("legend", {}, title), boxes.flat(), hint ? hintEl : null);
    return { el: set, read: () => {
      const picked = boxes.filter(([b]) => b.checked).map(([b]) => b.value);
      return { value: picked.length ? picked : undefined };
    } };
  }
  if (kind === "pair") {
    const inputs = p.prefixItems.map((item, i) => el("input", { id: `${id}-${i}`, type: "number", step: "any",
      "aria-label": `${titleOf(name, p)} ${["x", "y", "z"][i] || i + 1}`,
      value: Array.isArray(value) && value[i] !== undefined ? String(value[i]) : "" }));
    const set = el("fieldset", { class: "field pair", "data-field": name, "aria-describedby": described },
      el("legend", {}, title), inputs, hint ? hintEl : null);
    return { el: set, read: () => {
      const raw = inputs.map((i) => i.value.trim());
      if (raw.every((v) => v === "")) return { value: undefined };
      if (raw.some((v) => v === "" || !Number.isFinite(Number(v)))) return { problem: `${titleOf(name, p)}: give every number.` };
      return { value: raw.map(Number) };
    } };
  }
  // not editable here: kept as it was
  const kept = have === undefined ? "not set" : `${Array.isArray(have) ? have.length + " entries" : "set"}, kept as it is`;
  return { el: el("div", { class: "field kept", "data-field": name },
    el("span", {}, `${titleOf(name, p)}: ${kept} (edit it in the site file).`)), read: () => ({ value: have }) };
}

function readNumber(text, p, title) {
  if (text === "") return { value: undefined };
  const n = Number(text);
  if (!Number.isFinite(n)) return { problem: `${title}: not a number.` };
  if (p.type === "integer" && !Number.isInteger(n)) return { problem: `${title}: must be a whole number.` };
  if (p.minimum !== undefined && n < p.minimum) return { problem: `${title}: at least ${p.minimum}.` };
  if (p.maximum !== undefined && n > p.maximum) return { problem: `${title}: at most ${p.maximum}.` };
  if (p.exclusiveMinimum !== undefined && n <= p.exclusiveMinimum) return { problem: `${title}: more than ${p.exclusiveMinimum}.` };
  if (p.exclusiveMaximum !== undefined && n >= p.exclusiveMaximum) return { problem: `${title}: less than ${p.exclusiveMaximum}.` };
  return { value: n };
}

// The form of `rule` (an object as in a config file; {} for a new one) of type `type`
// ({type, config_schema}); ctx: {camera, zones: [names], lines: [names]}.
// Returns {el, read()} where read() gives {rule} or {problems: [words]}.
export function ruleForm(type, rule, ctx) {
  const schema = type.config_schema || {};
  const required = new Set(schema.required || []);
  const fields = Object.entries(schema.properties || {})
    .filter(([name]) => !SET_BY_VIEW.has(name))
    .map(([name, prop]) => {
      const p = resolve(prop);
      return { name, p, f: field(name, p, required.has(name), rule[name], ctx) };
    });
  const read = () => {
    const out = { type: type.type, camera: ctx.camera };
    const problems = [];
    for (const { name, p, f } of fields) {
      const got = f.read();
      if (got.problem) { problems.push(got.problem); continue; }
      const v = got.value;
      if (v === undefined) {
        if (required.has(name)) problems.push(`${titleOf(name, p)} is required.`);
        continue;
      }
      // a default left as it is stays out of the definition, unless the rule had it
      if (!(name in rule) && JSON.stringify(v) === JSON.stringify(p.default)) continue;
      out[name] = v;
    }
    return problems.length ? { problems } : { rule: out };
  };
  return { el: el("div", { class: "rule-fields" }, fields.map(({ f }) => f.el)), read };
}
