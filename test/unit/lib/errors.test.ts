import { describe, expect, it } from 'vitest';
import { errorMessage } from '../../../src/lib/errors.js';

describe('errorMessage', () => {
  it('reads an Error, a string, and a thrown { message } object (what opa-wasm throws)', () => {
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage('failed to parse json value')).toBe('failed to parse json value');
    expect(errorMessage({ message: 'not implemented: built-in function 0: io.jwt.decode' })).toBe('not implemented: built-in function 0: io.jwt.decode');
  });

  it('never reads "[object Object]": a plain object without a message is shown as JSON', () => {
    expect(errorMessage({ code: 'x', detail: 3 })).toBe('{"code":"x","detail":3}');
    expect(errorMessage(undefined)).toBe('undefined');
    expect(errorMessage(42)).toBe('42');
  });
});
