import { describe, expect, it } from 'vitest';
import { DEFAULT_ROUTE, RouteTable } from '../../../src/check/routes.js';
import { requestView } from '../../helpers/requests.js';

const table = new RouteTable([
  { name: 'health', match: { path_exact: '/healthz', methods: ['GET'] }, public: true },
  { name: 'docs', match: { path_prefix: '/docs/', hosts: ['api.example.test'] }, public: true },
  { name: 'admin', match: { path_prefix: '/admin' }, public: false },
  { name: 'public', match: { path_prefix: '/' }, public: true },
]);
const empty = new RouteTable([]);

describe('RouteTable', () => {
  it('matches exact paths with method conditions', () => {
    expect(table.match(requestView({ path: '/healthz' })).name).toBe('health');
    expect(table.match(requestView({ path: '/healthz', method: 'POST' })).name).toBe('public');
  });

  it('matches prefixes by whole segments', () => {
    expect(table.match(requestView({ path: '/admin' })).name).toBe('admin');
    expect(table.match(requestView({ path: '/admin/users' })).name).toBe('admin');
    expect(table.match(requestView({ path: '/administrator' })).name).toBe('public');
    expect(table.match(requestView({ path: '/docs' })).name).toBe('docs');
  });

  it('matches hosts without the port', () => {
    expect(table.match(requestView({ path: '/docs/x', host: 'api.example.test:443' })).name).toBe('docs');
    expect(table.match(requestView({ path: '/docs/x', host: 'other.test' })).name).toBe('public');
  });

  it('ignores the query string', () => {
    expect(table.match(requestView({ path: '/healthz?x=1' })).name).toBe('health');
  });

  it('requires authentication when nothing matches', () => {
    expect(empty.match(requestView({ path: '/x' }))).toBe(DEFAULT_ROUTE);
    expect(DEFAULT_ROUTE.public).toBe(false);
  });
});
