// Formats shared with the server's first render (web/templatetags/web_format.py): keep the two in step.
const money = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 4, useGrouping: false });

/** `$2.50`, `$0.245`; "–" for none. */
export const usd = (value) => (value == null ? "–" : "$" + money.format(Number(value)));

/** `45 s`, `12 min`, `3 h`, `2 d`. */
export function age(seconds) {
  if (seconds == null) return "–";
  const s = Math.max(0, Math.floor(seconds));
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) if (s >= size) return `${Math.floor(s / size)} ${unit}`;
  return `${s} s`;
}

/** `80`, `15.7`: at most one decimal, none for whole numbers. */
export const decimal = (value) => (Number.isInteger(value) ? String(value) : Number(value).toFixed(1));

/** `8 vCPU · 15.7 GB RAM`, whichever of the two is known; "–" for neither. */
export const machine = (o) =>
  [o.vcpus != null ? `${o.vcpus} vCPU` : "", o.ram_gb != null ? `${decimal(o.ram_gb)} GB RAM` : ""].filter(Boolean).join(" · ") || "–";

/** `-9.5%` with a real minus sign, `+3.0%`. */
export const percent = (value) => (value == null ? "" : `${value > 0 ? "+" : value < 0 ? "−" : ""}${Math.abs(value).toFixed(1)}%`);

/** `14:03` local time of an ISO timestamp. */
export const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });

/** `Reserved 12 mo`, `Spot`, `On demand`: `labels` maps pricing types to words (web/filters.py, via the page's config). */
export const pricing = (o, labels) => `${labels[o.pricing_type] ?? o.pricing_type}${o.commitment_months ? ` ${o.commitment_months} mo` : ""}`;
