/**
 * pandas' DataFrame and Series, column-wise: each column an NDArray (numeric and bool columns) or an array of
 * values (object, string, datetime and nullable columns). Both cross back into Python as pandas objects.
 */
import { ArgumentError } from '../errors.js';
import { NDArray } from './ndarray.js';

/** One column: an NDArray for numeric and bool dtypes, else an array of values. */
export type Column = NDArray | unknown[];

const kKey = Symbol('pyworkers.dataframe');

function checkColumn(value: unknown, what: string): Column {
  if (value instanceof NDArray) {
    if (value.ndim !== 1) throw new ArgumentError(`${what} must be one-dimensional, not of shape [${value.shape.join(', ')}]`);
    return value;
  }
  if (Array.isArray(value)) return value;
  throw new ArgumentError(`${what} must be an NDArray or an array`);
}

function lengthOf(column: Column): number {
  return column instanceof NDArray ? column.size : column.length;
}

function valueAt(column: Column, i: number): unknown {
  if (Array.isArray(column)) return column[i];
  const x = column.data[i];
  return column.dtype === 'bool' ? x !== 0 : x;
}

/**
 * A pandas DataFrame, column by column.
 *
 * ```ts
 * const df = await pool.eval('pd.DataFrame({"x": [1.5, 2.5], "name": ["a", "b"]})');
 * df.column('x');      // NDArray float64 [2]
 * df.column('name');   // ['a', 'b']
 * df.toRecords();      // [{ x: 1.5, name: 'a' }, { x: 2.5, name: 'b' }]
 * ```
 */
export class DataFrame {
  /** Column labels, in order. */
  readonly columns: readonly unknown[];
  /** The columns' values, in the order of `columns`. */
  readonly data: readonly Column[];
  /** Row labels; `null` for pandas' default index (0 to n-1). */
  readonly index: Column | null;

  /**
   * @param columns label → values, in order (a plain object or, for labels that are not strings, a Map).
   * @param options.index row labels; default `null` (0 to n-1).
   * @throws ArgumentError when a column is neither an NDArray nor an array, or the lengths differ.
   */
  constructor(columns: Record<string, Column> | Map<unknown, Column>, options?: { index?: Column | null });
  /** @internal */
  constructor(columns: unknown[], options: { index: Column | null; data: Column[] }, key: typeof kKey);
  constructor(columns: Record<string, Column> | Map<unknown, Column> | unknown[], options: { index?: Column | null; data?: Column[] } = {}, key?: typeof kKey) {
    if (key === kKey) {
      this.columns = Object.freeze([...(columns as unknown[])]);
      this.data = Object.freeze([...options.data!]);
      this.index = options.index ?? null;
      return;
    }
    if (columns === null || typeof columns !== 'object' || Array.isArray(columns)) {
      throw new ArgumentError('DataFrame: columns must be an object or a Map of column label → values');
    }
    const entries = columns instanceof Map ? [...columns.entries()] : Object.entries(columns);
    const data = entries.map(([label, values]) => checkColumn(values, `DataFrame: column ${JSON.stringify(String(label))}`));
    const index = options.index == null ? null : checkColumn(options.index, 'DataFrame: index');
    const rows = data.length ? lengthOf(data[0]!) : index ? lengthOf(index) : 0;
    for (const [i, column] of data.entries()) {
      if (lengthOf(column) !== rows) throw new ArgumentError(`DataFrame: column ${JSON.stringify(String(entries[i]![0]))} has ${lengthOf(column)} values, not ${rows}`);
    }
    if (index && lengthOf(index) !== rows) throw new ArgumentError(`DataFrame: the index has ${lengthOf(index)} labels, not ${rows}`);
    this.columns = Object.freeze(entries.map(([label]) => label));
    this.data = Object.freeze(data);
    this.index = index;
  }

  /** Number of rows. */
  get length(): number {
    return this.data.length ? lengthOf(this.data[0]!) : this.index ? lengthOf(this.index) : 0;
  }

  /** The values of the column labelled `label` (the first, if labels repeat). */
  column(label: unknown): Column | undefined {
    const i = this.columns.indexOf(label);
    return i < 0 ? undefined : this.data[i];
  }

  /** Label (as a string) → column. */
  toObject(): Record<string, Column> {
    const out: Record<string, Column> = {};
    this.columns.forEach((label, i) => Object.defineProperty(out, String(label), { value: this.data[i], enumerable: true, writable: true, configurable: true }));
    return out;
  }

  /** The rows as objects, label (as a string) → value; int64 values are bigints. */
  toRecords(): Record<string, unknown>[] {
    const labels = this.columns.map(String);
    return Array.from({ length: this.length }, (_, row) => {
      const record: Record<string, unknown> = {};
      labels.forEach((label, i) => Object.defineProperty(record, label, { value: valueAt(this.data[i]!, row), enumerable: true, writable: true, configurable: true }));
      return record;
    });
  }

  /** @internal */
  static fromWire(columns: unknown[], data: Column[], index: Column | null): DataFrame {
    return new DataFrame(columns, { index, data }, kKey);
  }
}

/** A pandas Series: its values, name and index. */
export class Series {
  readonly values: Column;
  /** The Series' name (`null` when it has none). */
  readonly name: unknown;
  /** Labels; `null` for pandas' default index (0 to n-1). */
  readonly index: Column | null;

  /** @throws ArgumentError when values or index are neither an NDArray nor an array, or their lengths differ. */
  constructor(values: Column, options: { name?: unknown; index?: Column | null } = {}) {
    this.values = checkColumn(values, 'Series: values');
    this.index = options.index == null ? null : checkColumn(options.index, 'Series: index');
    if (this.index && lengthOf(this.index) !== lengthOf(this.values)) {
      throw new ArgumentError(`Series: the index has ${lengthOf(this.index)} labels, not ${lengthOf(this.values)}`);
    }
    this.name = options.name ?? null;
  }

  get length(): number {
    return lengthOf(this.values);
  }

  /** The values as an array. */
  toArray(): unknown[] {
    return Array.from({ length: this.length }, (_, i) => valueAt(this.values, i));
  }
}
