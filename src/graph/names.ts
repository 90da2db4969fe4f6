/**
 * Maps keyed by value names. A value may be named anything, `__proto__` and `constructor` included: on an ordinary
 * object `out["__proto__"] = t` sets the prototype (the entry vanishes from the response) and `out["constructor"]`
 * reads Object's constructor when the entry is missing. A map without a prototype has neither problem, and
 * JSON.stringify writes its keys like any other object's.
 */
export function nameMap<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** The entry for `name` when `m` has one of its own (never an inherited property of an ordinary object). */
export function own<T>(m: Readonly<Record<string, T>> | undefined, name: string): T | undefined {
  return m !== undefined && Object.hasOwn(m, name) ? m[name] : undefined;
}
