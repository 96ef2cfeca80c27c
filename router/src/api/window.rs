//! Which of the route table's instances an answer lists: the API's
//! `?limit=N&offset=M` (everything when not given, which scripts rely on),
//! and the bound every page keeps, so a router with 10,000 instances does
//! not answer each 404 with megabytes.

use crate::error::RouteError;
use crate::table::{Instance, Table};

/// The most instances a page (the dashboard, a 404, an event) lists.
pub const PAGE_LIMIT: usize = 100;

/// Where the API lists everything from, for pages to point at.
pub const ALL_ROUTES: &str = "/api/routes";

/// A run of instances in table order (by app, then instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub offset: usize,
    /// `None`: every instance from `offset` on.
    pub limit: Option<usize>,
}

/// One listed instance: its app, its name and its listeners.
pub type Listed<'a> = (&'a str, &'a str, &'a Instance);

impl Window {
    /// Every instance.
    pub const ALL: Window = Window {
        offset: 0,
        limit: None,
    };

    /// What a page shows: [`PAGE_LIMIT`] instances from the start.
    pub const PAGE: Window = Window {
        offset: 0,
        limit: Some(PAGE_LIMIT),
    };

    /// The window a query string asks for; what it does not say is taken
    /// from `default`. Other parameters are ignored.
    pub fn from_query(query: Option<&str>, default: Window) -> Result<Window, RouteError> {
        let mut window = default;
        for pair in query.unwrap_or("").split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = || {
                value.parse::<usize>().map_err(|_| {
                    RouteError::BadRequest(format!("{key} must be a whole number, not {value:?}"))
                })
            };
            match key {
                "limit" => window.limit = Some(number()?),
                "offset" => window.offset = number()?,
                _ => {}
            }
        }
        Ok(window)
    }

    /// The same window, listing at most `most` instances: a page's bound.
    pub fn at_most(self, most: usize) -> Window {
        Window {
            limit: Some(self.limit.map_or(most, |limit| limit.min(most))),
            ..self
        }
    }

    /// The instances of `table` in this window.
    pub fn of<'a>(&self, table: &'a Table) -> impl Iterator<Item = Listed<'a>> {
        table
            .apps
            .iter()
            .flat_map(|(app, instances)| {
                instances
                    .iter()
                    .map(move |(name, inst)| (app.as_str(), name.as_str(), inst))
            })
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
    }
}

/// How many instances `table` has.
pub fn count(table: &Table) -> usize {
    table.apps.values().map(|instances| instances.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_set_what_they_say() {
        assert_eq!(Window::from_query(None, Window::ALL).unwrap(), Window::ALL);
        let w = Window::from_query(Some("offset=5&x=1&limit=2"), Window::ALL).unwrap();
        assert_eq!(
            w,
            Window {
                offset: 5,
                limit: Some(2)
            }
        );
        let paged = Window::from_query(Some("offset=7"), Window::PAGE).unwrap();
        assert_eq!(paged.limit, Some(PAGE_LIMIT));
        assert_eq!(paged.at_most(10).limit, Some(10));
        assert_eq!(Window::ALL.at_most(3).limit, Some(3));
        let err = Window::from_query(Some("limit=-1"), Window::ALL).unwrap_err();
        assert_eq!(err.code(), "BAD_REQUEST");
        assert!(err.to_string().contains("limit must be a whole number"));
    }
}
