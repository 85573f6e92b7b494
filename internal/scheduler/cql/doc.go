// Package cql owns the Amazon ECS cluster query language: it parses the
// expressions of memberOf placement constraints and of the
// ListContainerInstances filter, and evaluates them against one container
// instance.
//
// An expression is a predicate, subject operator [argument], or predicates
// combined with && (and), || (or), ! (not) and parentheses; ! binds tighter
// than &&, which binds tighter than ||. Parse rejects what ECS rejects:
// unknown subjects, operators a subject does not take (ECS lists them per
// subject), unbalanced parentheses, trailing tokens and expressions longer
// than 2,000 characters.
//
//	attribute:ecs.instance-type =~ t2.* && attribute:ecs.availability-zone != us-east-1d
//	not(task:group == service:database)
//	ec2InstanceId in ['i-0123', 'i-4567']
//
// Where the ECS documentation is silent, this package decides as follows.
//
//   - Arguments are bare words or strings in single or double quotes; a
//     quoted string runs to the next matching quote and has no escapes.
//     Bare words end at white space and at any of ( ) [ ] , ' " = ! < > & | ~.
//     A regular expression (after =~ or !~) is scanned differently: it ends
//     at white space, a quote, a ")" that closes a parenthesis opened before
//     it, or a && or || outside parentheses, so (a|b) and [)] are part of
//     it; quote a pattern that contains spaces.
//   - Word operators and the words and, or, not are case-insensitive;
//     subjects are case-sensitive.
//   - == and != compare literally: * is not a wildcard. Use =~ for patterns.
//   - =~ and !~ take Java regular expressions and, like Java's
//     String.matches, must match the whole value: t2.* matches t2.micro but
//     not xt2.micro. Java syntax RE2 lacks is translated when Go can express
//     it (\e, \cX, \uXXXX, octal \0nn, \p{Alpha} and the other POSIX
//     classes, \h, \v, \Z) and rejected with a syntax error otherwise
//     (backreferences, lookaround, atomic groups, possessive quantifiers,
//     class unions and intersections, the x and U flags).
//   - A subject without a value (an attribute that is not set, an empty
//     agentVersion or ec2InstanceId, a zero registeredAt) satisfies no
//     operator except not_exists: attribute:stack != prod selects instances
//     that have a stack attribute with another value, as the ECS examples
//     describe, and attribute:stack !exists selects those without one.
//   - task:group is the set of groups of the tasks on the instance. ==, in
//     and =~ hold when some task's group satisfies them; !=, not_in and !~
//     are their negations (no task's group does), so task:group != db
//     means the same as not(task:group == db) and holds on an empty
//     instance. exists holds when the instance runs any task. Ordering
//     operators are rejected.
//   - agentVersion compares versions component by component (1.10.0 >
//     1.9.0, 1.14 == 1.14.0); a leading v and +build metadata are ignored,
//     and a -pre-release sorts before its release, as in semantic versioning.
//   - registeredAt takes a date (2018-06-18) or a time with or without a
//     zone (2018-06-18T22:28:28Z, 2018-06-18T22:28:28+00:00,
//     2018-06-18T22:28:28, read as UTC), optionally with fractional seconds.
//     An argument stands for the interval its precision covers: == 2018-06-18
//     holds all that day, < 2018-06-18 before it starts, > 2018-06-18 after
//     it ends.
//   - Attributes compare with >, >=, <, <= as numbers when both sides are
//     decimal numbers and as strings otherwise.
//   - agentConnected takes true or false (any case).
//
// A parsed Expr is immutable and safe for concurrent use.
package cql
