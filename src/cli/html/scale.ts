/**
 * Axis scales: linear maps and "nice" ticks (1, 2 or 5 times a power of ten; bytes in the unit that suits).
 */

export interface Scale {
  (value: number): number;
  ticks: number[];
  /** The tick labels' unit, e.g. `'MiB'` or `'s'`. */
  unit: string;
  /** The factor that turns a value into the unit. */
  per: number;
  format(value: number): string;
}

function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
}

function decimals(step: number): number {
  return step >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(step) - 1e-9));
}

/** A linear scale from [0, max] (in `unit`s of `per`) to [from, to] pixels, with about `count` ticks. */
export function linear(max: number, per: number, unit: string, from: number, to: number, count: number): Scale {
  const top = Math.max(max / per, 1e-9);
  const step = niceStep(top, count);
  const end = Math.ceil(top / step - 1e-9) * step || step;
  const ticks: number[] = [];
  for (let v = 0; v <= end + step / 2; v += step) ticks.push(v * per);
  const digits = decimals(step);
  const scale = ((value: number) => from + ((value / per) / end) * (to - from)) as Scale;
  scale.ticks = ticks;
  scale.unit = unit;
  scale.per = per;
  scale.format = (value: number) => (value / per).toFixed(digits);
  return scale;
}

/** The unit for a byte axis whose highest value is `max`. */
export function byteUnit(max: number): { per: number; unit: string } {
  if (max >= 1024 ** 3) return { per: 1024 ** 3, unit: 'GiB' };
  if (max >= 1024 ** 2) return { per: 1024 ** 2, unit: 'MiB' };
  if (max >= 1024) return { per: 1024, unit: 'KiB' };
  return { per: 1, unit: 'B' };
}
