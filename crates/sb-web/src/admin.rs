//! The back office: server-rendered pages (askama) made lively with htmx, one module per
//! domain. Pages share a [`Layout`] (navigation by domain, filtered by permission) and the
//! [`Pager`] of their tables (paging, sorting, filtering in the query string).

pub mod account;
pub mod api_keys;
pub mod audit;
pub mod dashboard;
pub mod jobs;
pub mod monitoring;
pub mod privacy;
pub mod users;

use askama::Template;
use axum::Form;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{Problem, WebError};

/// A form body whose rejection is a problem (shown as a friendly page).
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(WebError))]
pub struct ValidForm<T>(pub T);

/// A query string whose rejection is a problem (shown as a friendly page).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(WebError))]
pub struct PageQuery<T>(pub T);

/// A link in the navigation.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Where.
    pub href: &'static str,
    /// Its text.
    pub label: &'static str,
    /// Whether it is the current page's.
    pub active: bool,
}

/// A group of links: one domain.
#[derive(Debug, Clone)]
pub struct NavGroup {
    /// The domain.
    pub label: &'static str,
    /// Its pages the user may open.
    pub links: Vec<NavLink>,
}

/// A page in the navigation: link, label, the permission it needs.
type NavPage = (&'static str, &'static str, &'static str);

/// The navigation: domain and its pages.
const NAV: &[(&str, &[NavPage])] = &[
    (
        "Operations",
        &[
            ("/admin", "Dashboard", "dashboard.view"),
            ("/admin/jobs", "Jobs", "jobs.view"),
            ("/admin/monitoring", "Monitoring", "monitoring.view"),
        ],
    ),
    ("Privacy", &[("/admin/privacy", "Reveal & erasure", "privacy.view"), ("/admin/audit", "Audit log", "audit.view")]),
    (
        "Administration",
        &[("/admin/users", "Users & roles", "users.view"), ("/admin/api-keys", "API keys", "apikeys.view")],
    ),
];

/// What every page's frame shows.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The page title.
    pub title: String,
    /// The signed-in user's name (empty on the sign-in page).
    pub user: String,
    /// Their role.
    pub role: String,
    /// The session's CSRF token, for every form.
    pub csrf: String,
    /// The navigation.
    pub nav: Vec<NavGroup>,
}

impl Layout {
    /// The frame for `caller` on the page at `active`.
    pub fn new(caller: &Caller, title: &str, active: &str) -> Self {
        let perms = caller.permissions();
        let nav = NAV
            .iter()
            .map(|(label, links)| NavGroup {
                label,
                links: links
                    .iter()
                    .filter(|(_, _, p)| perms.allows(p) || (*p == "privacy.view" && perms.allows("privacy.reveal")))
                    .map(|(href, label, _)| NavLink { href, label, active: *href == active })
                    .collect(),
            })
            .filter(|g| !g.links.is_empty())
            .collect();
        let (user, role, csrf) = match caller.user() {
            Some(u) => (u.user.name.clone(), u.user.role.clone(), u.session.csrf_token.clone()),
            None => (caller.audit_id(), String::new(), String::new()),
        };
        Self { title: title.to_owned(), user, role, csrf, nav }
    }
}

/// Renders a page with status 200.
pub fn render<T: Template>(page: &T) -> Result<Response, WebError> {
    render_with(StatusCode::OK, page)
}

/// Renders a page with `status`.
pub fn render_with<T: Template>(status: StatusCode, page: &T) -> Result<Response, WebError> {
    let html = page.render().map_err(|e| WebError::Internal(format!("template: {e}")))?;
    Ok((status, Html(html)).into_response())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    detail: &'a str,
}

/// The friendly page for a problem: its title and, when safe, its detail; never internals.
pub fn error_page(status: StatusCode, problem: &Problem) -> Response {
    let detail = match problem.kind.rsplit(':').next().unwrap_or("") {
        "forbidden" => "Your role does not allow this page. Ask an administrator if you need it.",
        "csrf" => "This form has expired or did not come from this site. Go back, reload the page and try again.",
        "not-found" => "There is nothing here. The link may be old.",
        "rate-limited" => "Too many attempts. Wait a minute and try again.",
        "unavailable" => "Something Switchboard depends on is not answering. Try again in a moment.",
        "internal" => "Something went wrong on our side. It has been logged; try again, or tell your administrator.",
        _ => problem.detail.as_deref().unwrap_or("The request could not be handled."),
    };
    let page = ErrorPage {
        layout: Layout { title: problem.title.clone(), ..Layout::default() },
        status: status.as_u16(),
        detail,
    };
    let mut r = match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, Html(format!("<h1>{}</h1>", status.as_u16()))).into_response(),
    };
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

/// The query string of a table: filter, sort, page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TableQuery {
    /// Filter text.
    #[serde(default)]
    pub q: String,
    /// Sort column.
    #[serde(default)]
    pub sort: String,
    /// `desc` for descending.
    #[serde(default)]
    pub dir: String,
    /// Page, from 1.
    pub page: Option<u32>,
}

/// Rows per page.
pub const PER_PAGE: u32 = 25;

/// Links of a table's header and footer.
#[derive(Debug, Clone)]
pub struct Pager {
    /// The table's page.
    pub base: &'static str,
    /// Filter text.
    pub q: String,
    /// Sort column.
    pub sort: String,
    /// Whether descending.
    pub desc: bool,
    /// The current page, from 1.
    pub page: u32,
    /// Pages in all.
    pub pages: u32,
    /// Rows in all.
    pub total: i64,
}

impl Pager {
    /// The pager of `query` over `total` rows, `default_sort` when none is asked.
    pub fn new(base: &'static str, query: &TableQuery, total: i64, default_sort: &str, sortable: &[&str]) -> Self {
        let pages = u32::try_from((total.max(0) as u64).div_ceil(u64::from(PER_PAGE))).unwrap_or(1).max(1);
        let sort = if sortable.contains(&query.sort.as_str()) { query.sort.clone() } else { default_sort.to_owned() };
        Self {
            base,
            q: query.q.trim().to_owned(),
            sort,
            desc: query.dir == "desc",
            page: query.page.unwrap_or(1).clamp(1, pages),
            pages,
            total,
        }
    }

    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        i64::from((self.page - 1) * PER_PAGE)
    }

    /// Rows per page.
    pub fn limit(&self) -> i64 {
        i64::from(PER_PAGE)
    }

    fn href(&self, sort: &str, desc: bool, page: u32) -> String {
        let mut s = format!("{}?sort={}&dir={}&page={page}", self.base, sort, if desc { "desc" } else { "asc" });
        if !self.q.is_empty() {
            s.push_str("&q=");
            s.push_str(&crate::routes::urlencode(&self.q));
        }
        s
    }

    /// The link that sorts by `column` (flipping the direction when it is the current one).
    pub fn sort_link(&self, column: &str) -> String {
        self.href(column, column == self.sort && !self.desc, 1)
    }

    /// `▲`/`▼` beside the current sort column.
    pub fn arrow(&self, column: &str) -> &'static str {
        match (column == self.sort, self.desc) {
            (false, _) => "",
            (true, false) => "▲",
            (true, true) => "▼",
        }
    }

    /// The previous page's link, if any.
    pub fn prev(&self) -> Option<String> {
        (self.page > 1).then(|| self.href(&self.sort, self.desc, self.page - 1))
    }

    /// The next page's link, if any.
    pub fn next(&self) -> Option<String> {
        (self.page < self.pages).then(|| self.href(&self.sort, self.desc, self.page + 1))
    }
}

/// An instant for people, in UTC.
pub fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "—".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// Form fields are read as a list of pairs, so repeated fields (checkboxes) are kept.
pub type Pairs = Form<Vec<(String, String)>>;
