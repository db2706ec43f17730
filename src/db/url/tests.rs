//! Unit tests of `url`.

use super::*;

#[test]
fn the_password_never_shows() {
    let url: DatabaseUrl = "postgres://tally:s3cret-pw@db.internal:5432/marketing".parse().unwrap();
    assert_eq!(url.redacted(), "postgres://tally:***@db.internal:5432/marketing");
    assert!(!format!("{url} {url:?}").contains("s3cret-pw"));
    assert!(url.expose().contains("s3cret-pw"));
}

#[test]
fn another_database_keeps_the_credentials() {
    let url: DatabaseUrl = "postgres://tally:pw@localhost:5432/postgres".parse().unwrap();
    assert_eq!(url.with_database("tally_test_1").expose(), "postgres://tally:pw@localhost:5432/tally_test_1");
}

#[test]
fn bad_urls_are_explained_without_the_password() {
    let err = "mysql://root:hunter2@localhost/db".parse::<DatabaseUrl>().unwrap_err().to_string();
    assert!(err.contains("not postgres"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let err = "not a url at all".parse::<DatabaseUrl>().unwrap_err().to_string();
    assert!(err.contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE"), "{err}");
    let err = "postgres://u:hunter2@host:notaport/db".parse::<DatabaseUrl>().unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn no_form_of_a_bad_value_shows_the_password() {
    for text in [
        "postgres//u:hunter2@host/db",
        "u:hunter2@host/db",
        "postgres:u:hunter2@host/db",
        "postgres://u:hunter2@host/db?sslmode=bogus",
        "postgres://u:hunter2@host/db?statement-cache-capacity=x",
        "postgres://u:p@ss:hunter2@host:99999/db",
        "host=h password=hunter2 dbname=x port=notaport",
        "host=h password='hunter2 dbname=x",
        "host=h dbname=x hunter2",
        "//u:hunter2@host/db",
        "ftp://u:hunter2@host/db",
        "password=hunter2 host=h bogus",
        "postgres://u@host/db?password=hunter2&sslmode=bogus",
        "postgres://r4:12/hunter2@127.0.0.1:5499/pwdb",
        "postgres://tally:123#hunter2@127.0.0.1:5432/db",
        "postgres://tally:77?hunter2@127.0.0.1:5432/db",
        "postgres://tally:hunter2/marketing",
        "hunter2",
        "postgres:hunter2",
        "mysql:hunter2",
    ] {
        let err = text.parse::<DatabaseUrl>().unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{text}: {err}");
        assert!(!err.contains("error with configuration: error with configuration"), "{err}");
    }
}

#[test]
fn libpq_keyword_value_strings_are_accepted() {
    let url: DatabaseUrl =
        "host=db.internal port=5433 user=tally password='hunter2 x' dbname=marketing".parse().unwrap();
    assert_eq!(url.redacted(), "postgres://tally:***@db.internal:5433/marketing");
    let options = url.connect_options().unwrap();
    assert_eq!((options.get_host(), options.get_port(), options.get_username()), ("db.internal", 5433, "tally"));
    assert_eq!(options.get_database(), Some("marketing"));
    let socket: DatabaseUrl = "dbname=marketing host=/var/run/postgresql".parse().unwrap();
    assert_eq!(
        socket.connect_options().unwrap().get_socket().map(|p| p.display().to_string()).as_deref(),
        Some("/var/run/postgresql")
    );
}

#[test]
fn unknown_query_parameters_are_dropped() {
    let url: DatabaseUrl = "postgres://u@host/db?pasword=hunter2&sslmode=disable".parse().unwrap();
    assert_eq!(url.expose(), "postgres://u@host/db?sslmode=disable");
    let url: DatabaseUrl = "postgres://u@host/db?pasword=hunter2".parse().unwrap();
    assert_eq!(url.expose(), "postgres://u@host/db");
}

#[test]
fn a_password_query_parameter_is_redacted_too() {
    let url: DatabaseUrl = "postgres://u@host/db?password=hunter2&sslmode=disable".parse().unwrap();
    assert!(!url.redacted().contains("hunter2"), "{}", url.redacted());
    assert!(url.redacted().contains("sslmode=disable"));
    assert_eq!(url.scrub("bad password hunter2 for u"), "bad password *** for u");
}
