import type { FakeSite, FakeSiteGroup, FakeSiteGroupMember, FakeTenant } from './model.ts';

/**
 * SharePoint REST (`{siteUrl}/_api/web/…`) as the fake serves it: site groups and their members,
 * in the three JSON flavours SharePoint answers depending on `Accept` — `odata=verbose`
 * (`{d: {results, __next}}`), `odata=nometadata` (`{value, odata.nextLink}`) and the default
 * `odata=minimalmetadata` (`{odata.metadata, value, odata.nextLink}`) — with SharePoint's paging
 * (`$top`, `$skiptoken=Paged=TRUE&p_ID=<last id>`) and error bodies.
 */

export type ODataFormat = 'verbose' | 'nometadata' | 'minimalmetadata';

export function odataFormat(accept: string | undefined): ODataFormat {
  const a = (accept ?? '').toLowerCase();
  if (a.includes('odata=verbose')) return 'verbose';
  if (a.includes('odata=nometadata') || a.includes('odata.metadata=none')) return 'nometadata';
  return 'minimalmetadata';
}

export interface RestAnswer {
  status: number;
  body: unknown;
}

type Entity = Record<string, unknown> & { Id: number };

function hashId(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return 10 + (h % 10_000_000);
}

export function restError(format: ODataFormat, status: number, code: string, message: string): RestAnswer {
  const error = { code, message: { lang: 'en-US', value: message } };
  return { status, body: format === 'verbose' ? { error } : { 'odata.error': error } };
}

/** The site whose web URL path starts the request path, and the REST path after `/_api/`. */
export function siteForPath(tenant: FakeTenant, origin: string, pathname: string): { site: FakeSite; api: string } | null {
  const i = pathname.toLowerCase().indexOf('/_api/');
  if (i < 0) return null;
  const sitePath = decodeURIComponent(pathname.slice(0, i)).toLowerCase();
  for (const site of tenant.sites.values()) {
    const u = new URL(site.webUrl);
    if (u.origin === origin && u.pathname.toLowerCase().replace(/\/+$/, '') === sitePath) return { site, api: decodeURIComponent(pathname.slice(i + '/_api/'.length)) };
  }
  return null;
}

export function siteRest(tenant: FakeTenant, site: FakeSite, api: string, url: URL, format: ODataFormat, pageSize: number): RestAnswer {
  const base = `${site.webUrl}/_api/`;
  const web = /^web\/?$/i;
  if (web.test(api)) return entity(format, `${base}Web`, 'SP.Web', { Id: 0, WebId: site.webId, Title: site.displayName, Url: site.webUrl } as unknown as Entity);
  if (/^web\/sitegroups\/?$/i.test(api)) {
    const groups = [...site.siteGroups.values()].sort((a, b) => a.id - b.id).map(groupJson);
    return collection(format, url, groups, pageSize, (g) => `${base}Web/SiteGroups/GetById(${g.Id})`, 'SP.Group', `${base}$metadata#SP.ApiData.Groups`);
  }
  const m = /^web\/sitegroups(?:\/getbyid\((\d+)\)|\((\d+)\)|\/getbyname\('((?:[^']|'')*)'\))(\/users)?\/?$/i.exec(api);
  if (!m) return restError(format, 404, '-1, Microsoft.SharePoint.Client.InvalidClientQueryException', `The expression "${api}" is not valid.`);
  const group = m[3] !== undefined
    ? [...site.siteGroups.values()].find((g) => g.title.toLowerCase() === m[3]!.replace(/''/g, "'").toLowerCase())
    : site.siteGroups.get(Number(m[1] ?? m[2]));
  if (!group) return restError(format, 404, '-2146232832, Microsoft.SharePoint.SPException', 'Group cannot be found.');
  if (!m[4]) return entity(format, `${base}Web/SiteGroups/GetById(${group.id})`, 'SP.Group', groupJson(group));
  const users = members(tenant, group).sort((a, b) => a.Id - b.Id);
  return collection(format, url, users, pageSize, (u) => `${base}Web/GetUserById(${u.Id})`, 'SP.User', `${base}$metadata#SP.ApiData.Users`);
}

function groupJson(g: FakeSiteGroup): Entity {
  return {
    Id: g.id, IsHiddenInUI: false, LoginName: g.title, Title: g.title, PrincipalType: 8,
    AllowMembersEditMembership: false, Description: null, OnlyAllowMembersViewMembership: false, OwnerTitle: g.title,
  };
}

function members(tenant: FakeTenant, g: FakeSiteGroup): Entity[] {
  const out: Entity[] = [];
  for (const m of g.members) {
    const e = memberJson(tenant, m);
    if (e) out.push(e);
  }
  return out;
}

function user(login: string, title: string, email: string, principalType: number, upn: string | null): Entity {
  return {
    Id: hashId(login), IsHiddenInUI: false, LoginName: login, Title: title, PrincipalType: principalType, Email: email,
    Expiration: '', IsEmailAuthenticationGuestUser: false, IsShareByEmailGuestUser: false, IsSiteAdmin: false,
    UserId: principalType === 1 ? { NameId: hashId(login).toString(16).padStart(16, '0'), NameIdIssuer: 'urn:federation:microsoftonline' } : null,
    UserPrincipalName: upn,
  };
}

/** SharePoint lists what it was given; a principal deleted from the directory is no longer listed. */
function memberJson(tenant: FakeTenant, m: FakeSiteGroupMember): Entity | null {
  if ('user' in m) {
    const u = tenant.users.get(m.user);
    return u ? user(`i:0#.f|membership|${u.userPrincipalName.toLowerCase()}`, u.displayName, u.mail ?? '', 1, u.userPrincipalName) : null;
  }
  if ('group' in m) {
    const g = tenant.groups.get(m.group);
    if (!g) return null;
    return g.kind === 'unified'
      ? user(`c:0o.c|federateddirectoryclaimprovider|${g.id}`, g.displayName, `${g.displayName.toLowerCase().replace(/[^a-z0-9]+/g, '')}@tenant.test`, 4, null)
      : user(`c:0t.c|tenant|${g.id}`, g.displayName, '', 4, null);
  }
  if ('groupOwners' in m) {
    const g = tenant.groups.get(m.groupOwners);
    return g ? user(`c:0o.c|federateddirectoryclaimprovider|${g.id}_o`, `${g.displayName} Owners`, '', 4, null) : null;
  }
  return user(m.login, m.title ?? m.login, m.email ?? '', m.principalType ?? 4, null);
}

function entity(format: ODataFormat, id: string, type: string, e: Entity): RestAnswer {
  if (format === 'verbose') return { status: 200, body: { d: { __metadata: { id, uri: id, type }, ...e } } };
  if (format === 'nometadata') return { status: 200, body: e };
  return { status: 200, body: { 'odata.metadata': `${id}/$metadata#${type}/@Element`, 'odata.type': type, 'odata.id': id, 'odata.editLink': id, ...e } };
}

function collection(format: ODataFormat, url: URL, all: Entity[], pageSize: number, idOf: (e: Entity) => string, type: string, metadata: string): RestAnswer {
  const top = Math.max(1, Math.min(Number(url.searchParams.get('$top')) || pageSize, pageSize));
  const after = /p_ID=(\d+)/i.exec(url.searchParams.get('$skiptoken') ?? '')?.[1];
  const start = after === undefined ? 0 : all.findIndex((e) => e.Id > Number(after));
  const page = start < 0 ? [] : all.slice(start, start + top);
  let next: string | undefined;
  if (start >= 0 && start + top < all.length) {
    const n = new URL(url.href);
    n.searchParams.set('$skiptoken', `Paged=TRUE&p_ID=${page[page.length - 1]!.Id}`);
    n.searchParams.set('$top', String(top));
    next = n.href;
  }
  if (format === 'verbose') {
    return { status: 200, body: { d: { results: page.map((e) => ({ __metadata: { id: idOf(e), uri: idOf(e), type }, ...e })), ...(next ? { __next: next } : {}) } } };
  }
  if (format === 'nometadata') return { status: 200, body: { value: page, ...(next ? { 'odata.nextLink': next } : {}) } };
  return {
    status: 200,
    body: {
      'odata.metadata': metadata,
      value: page.map((e) => ({ 'odata.type': type, 'odata.id': idOf(e), 'odata.editLink': idOf(e), ...e })),
      ...(next ? { 'odata.nextLink': next } : {}),
    },
  };
}
