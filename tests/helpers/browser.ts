/**
 * A real headless browser for the dashboard's tests: Debian's chromium
 * driven by playwright-core, which downloads no browser of its own.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium (`apt-get install chromium`); KOLLA_TS_CHROMIUM names another. */
export const CHROMIUM = process.env.KOLLA_TS_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}; apt-get install chromium (or set KOLLA_TS_CHROMIUM)`);
  // Chromium refuses to start its sandbox as root; the tests run as root.
  const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/**
 * A page that records every answer of 500 or more (a broken view shows up
 * as one even when the page around it renders); read them from `serverErrors`.
 */
export async function newPage(browser: Browser): Promise<{ page: Page; serverErrors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(60_000);
  const serverErrors: string[] = [];
  page.on('response', (response) => {
    if (response.status() >= 500) serverErrors.push(`${response.status()} ${response.url()}`);
  });
  return { page, serverErrors };
}

/** Logs in through Horizon's login form (Default domain); resolves once the dashboard has answered. */
export async function horizonLogin(page: Page, baseUrl: string, user: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/auth/login/`);
  await page.locator('#id_username').fill(user);
  await page.locator('#id_password').fill(password);
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith('/auth/login')), page.locator('#loginBtn').click()]);
}

/**
 * Opens a panel through the sidebar, as a user would: `groups` are the
 * accordion levels to open (['project', 'compute'] for Project → Compute),
 * `href` the panel's link. Resolves once the panel's page has loaded.
 */
export async function horizonOpenPanel(page: Page, groups: string[], href: string): Promise<void> {
  for (let level = 1; level <= groups.length; level++) {
    const id = `sidebar-accordion-${groups.slice(0, level).join('-')}`;
    const group = page.locator(`#${id}`);
    if (!(await group.isVisible())) {
      await page.locator(`#sidebar a[data-target="#${id}"]`).click();
      await group.waitFor({ state: 'visible' });
    }
  }
  await Promise.all([page.waitForURL((url) => url.pathname === href), page.locator(`#sidebar a[href="${href}"]`).click()]);
}

/** Signs out through the user menu, as a user would; resolves on the login form. */
export async function horizonLogout(page: Page): Promise<void> {
  await page.locator('.user-menu a.dropdown-toggle').click();
  await page.locator('.user-menu a[href$="/auth/logout/"]').click();
  await page.waitForURL((url) => url.pathname.startsWith('/auth/login'));
  await page.locator('#id_username').waitFor();
}
