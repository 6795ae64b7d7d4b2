//! What a compiled script reads and compares, found by walking its AST.
//!
//! rhai answers `false` (and `!=` answers `true`) when a comparison's operands have different
//! types, so `data.amount < "15000"` routes an expense the wrong way without any error. This
//! module collects the facts the validator needs to catch that before anything runs: which
//! fields and parameters a script reads, what it compares them with, which functions it calls,
//! and which fields an action's map literal sets. It judges nothing itself: the validator knows
//! the declared types.

use super::position;
use rhai::{AST, ASTFlags, ASTNode, Expr, FnCallExpr, Position, Stmt, Token};

/// The context object a script reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Root {
    Data,
    Payload,
    Params,
    Actor,
}

impl Root {
    fn from_name(name: &str) -> Option<Root> {
        match name {
            "data" => Some(Root::Data),
            "payload" => Some(Root::Payload),
            "params" => Some(Root::Params),
            "actor" => Some(Root::Actor),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Root::Data => "data",
            Root::Payload => "payload",
            Root::Params => "params",
            Root::Actor => "actor",
        }
    }
}

/// `data.amount` or `data["amount"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    pub root: Root,
    pub name: String,
    pub line: u32,
    pub column: u32,
}

/// A literal in a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Bool(bool),
    Integer(i64),
    Float(f64),
    String(String),
    Unit,
}

impl Literal {
    pub fn type_name(&self) -> &'static str {
        match self {
            Literal::Bool(_) => "bool",
            Literal::Integer(_) => "integer",
            Literal::Float(_) => "number",
            Literal::String(_) => "string",
            Literal::Unit => "()",
        }
    }
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Integer(i) => write!(f, "{i}"),
            Literal::Float(x) => write!(f, "{x}"),
            Literal::String(s) => write!(f, "{s:?}"),
            Literal::Unit => f.write_str("()"),
        }
    }
}

/// A comparison between a context value and a literal: `data.amount < "15000"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub access: Access,
    pub operator: String,
    pub literal: Literal,
    pub line: u32,
    pub column: u32,
}

/// A key of a map literal: `#{ sealed: true }` in an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapKey {
    pub name: String,
    pub line: u32,
    pub column: u32,
}

/// A call of a named function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    pub line: u32,
    pub column: u32,
}

/// Everything the validator wants to know about one script.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub accesses: Vec<Access>,
    pub comparisons: Vec<Comparison>,
    /// Functions called (not operators): to follow calls between rule functions, and to
    /// refuse those the sandbox does not offer.
    pub calls: Vec<Call>,
    /// Keys of a map literal that is the whole script (an inline action's changes).
    pub result_keys: Vec<MapKey>,
    /// Whether it holds a `throw`: a guard that can say why it does not hold.
    pub throws: bool,
}

/// Facts about a whole AST: an inline expression, or every function of a rules file.
pub fn facts(ast: &AST) -> Facts {
    let mut facts = Facts::default();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(expr)) => visit(expr, &mut facts),
            // A script that is one call (`a < b`) holds it as a statement, not an expression.
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => visit_call(call, *pos, &mut facts),
            // `throw` is a `return` that breaks out of normal flow.
            Some(ASTNode::Stmt(Stmt::Return(_, flags, _))) if flags.contains(ASTFlags::BREAK) => {
                facts.throws = true
            }
            _ => {}
        }
        true
    });
    if let [Stmt::Expr(expr)] = ast.statements() {
        // `#{ reminded: true }` holds only constants, and rhai folds it into one value.
        map_keys(expr, &mut facts.result_keys);
    }
    facts
}

/// Facts about one function of a rules file.
pub fn function_facts(ast: &AST, function: &str) -> Facts {
    // rhai's filtered merge copies every function when the receiving AST holds none yet, so
    // merge into an AST that already holds one (empty) function.
    let only = ANCHOR.merge_filtered(&ast.clone_functions_only(), |_, _, _, name, _| {
        name == function
    });
    let mut facts = facts(&only);
    // An action written as a rule returns its changes: a map literal as the body's last
    // statement, or after `return`. The walk starts at the body's statements.
    let mut last = Vec::new();
    let mut returned = Vec::new();
    only.walk(&mut |path: &[ASTNode]| {
        match path {
            [ASTNode::Stmt(_)] => last.clear(),
            [ASTNode::Stmt(Stmt::Expr(_)), ASTNode::Expr(expr)] => map_keys(expr, &mut last),
            [.., ASTNode::Stmt(Stmt::Return(..)), ASTNode::Expr(expr)] => {
                map_keys(expr, &mut returned)
            }
            _ => {}
        }
        true
    });
    facts.result_keys.extend(last);
    facts.result_keys.extend(returned);
    facts
}

/// The keys of a map literal (also one rhai has folded into a constant).
fn map_keys(expr: &Expr, out: &mut Vec<MapKey>) {
    match expr {
        Expr::Map(map, _) => {
            for (ident, _) in map.0.iter() {
                let (line, column) = position(ident.pos);
                out.push(MapKey {
                    name: ident.name.to_string(),
                    line,
                    column,
                });
            }
        }
        Expr::DynamicConstant(value, pos) => {
            if let Some(map) = value.read_lock::<rhai::Map>() {
                let (line, column) = position(*pos);
                for key in map.keys() {
                    out.push(MapKey {
                        name: key.to_string(),
                        line,
                        column,
                    });
                }
            }
        }
        _ => {}
    }
}

/// An AST with one empty function, see [`function_facts`].
static ANCHOR: std::sync::LazyLock<AST> = std::sync::LazyLock::new(|| {
    rhai::Engine::new_raw()
        .compile("fn __sopflow_anchor() {}")
        .unwrap_or_default()
});

fn visit(expr: &Expr, facts: &mut Facts) {
    match expr {
        Expr::Dot(..) | Expr::Index(..) => {
            if let Some(access) = access_of(expr) {
                facts.accesses.push(access);
            }
        }
        Expr::FnCall(call, pos) => visit_call(call, *pos, facts),
        _ => {}
    }
}

fn visit_call(call: &FnCallExpr, pos: Position, facts: &mut Facts) {
    if let (Some(token), [lhs, rhs]) = (&call.op_token, call.args.as_slice())
        && is_comparison(token)
    {
        let pair = match (access_of(lhs), literal_of(rhs)) {
            (Some(a), Some(l)) => Some((a, l)),
            _ => access_of(rhs).zip(literal_of(lhs)),
        };
        if let Some((access, literal)) = pair {
            let (line, column) = position(pos);
            facts.comparisons.push(Comparison {
                access,
                operator: call.name.to_string(),
                literal,
                line,
                column,
            });
        }
    } else if call.op_token.is_none() {
        let (line, column) = position(pos);
        facts.calls.push(Call {
            name: call.name.to_string(),
            line,
            column,
        });
    }
}

fn is_comparison(token: &Token) -> bool {
    matches!(
        token,
        Token::EqualsTo
            | Token::NotEqualsTo
            | Token::LessThan
            | Token::LessThanEqualsTo
            | Token::GreaterThan
            | Token::GreaterThanEqualsTo
    )
}

/// `root.name...` or `root["name"]...` where root is a context object.
fn access_of(expr: &Expr) -> Option<Access> {
    let (Expr::Dot(binary, _, _) | Expr::Index(binary, _, _)) = expr else {
        return None;
    };
    let Expr::Variable(var, _, pos) = &binary.lhs else {
        return None;
    };
    let root = Root::from_name(var.1.as_str())?;
    let name = match &binary.rhs {
        Expr::Property(prop, _) => prop.2.to_string(),
        Expr::StringConstant(s, _) => s.to_string(),
        Expr::Dot(inner, _, _) | Expr::Index(inner, _, _) => match &inner.lhs {
            Expr::Property(prop, _) => prop.2.to_string(),
            Expr::StringConstant(s, _) => s.to_string(),
            _ => return None,
        },
        _ => return None,
    };
    let (line, column) = position(*pos);
    Some(Access {
        root,
        name,
        line,
        column,
    })
}

fn literal_of(expr: &Expr) -> Option<Literal> {
    Some(match expr {
        Expr::BoolConstant(b, _) => Literal::Bool(*b),
        Expr::IntegerConstant(i, _) => Literal::Integer(*i),
        Expr::FloatConstant(x, _) => Literal::Float(**x),
        Expr::StringConstant(s, _) => Literal::String(s.to_string()),
        Expr::CharConstant(c, _) => Literal::String(c.to_string()),
        Expr::Unit(_) => Literal::Unit,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Sandbox;

    #[test]
    fn a_rule_action_sets_the_keys_it_returns() {
        let sandbox = Sandbox::default();
        let ast = sandbox
            .compile_rules(
                "fn mark(data) {\n    let probe = #{ ignored: 1 };\n    if data.note == \"x\" { return #{ early: true }; }\n    #{ flagged: data.note != \"\", constant: 1 }\n}\nfn other() { #{ elsewhere: 1 } }\n",
            )
            .expect("compiles");
        let mut keys: Vec<String> = function_facts(&ast, "mark")
            .result_keys
            .into_iter()
            .map(|k| k.name)
            .collect();
        keys.sort();
        assert_eq!(keys, ["constant", "early", "flagged"]);
    }

    #[test]
    fn an_inline_action_of_constants_still_names_its_keys() {
        let sandbox = Sandbox::default();
        for source in ["#{ reminded: true }", "#{ reminded: true, by: actor.id }"] {
            let ast = sandbox.compile_expression(source).expect("compiles");
            let keys: Vec<String> = facts(&ast)
                .result_keys
                .into_iter()
                .map(|k| k.name)
                .collect();
            assert!(keys.contains(&"reminded".to_string()), "{source}: {keys:?}");
        }
    }

    #[test]
    fn finds_accesses_and_mismatched_comparisons() {
        let sandbox = Sandbox::default();
        let ast = sandbox
            .compile_expression(
                "data.amount < \"15000\" && params[\"limit\"] >= 3 || 200 > payload.amount.abs()",
            )
            .expect("compiles");
        let f = facts(&ast);
        let single = facts(
            &sandbox
                .compile_expression("data.amount >= \"15000\"")
                .expect("compiles"),
        );
        assert_eq!(
            single.comparisons.len(),
            1,
            "a script that is one comparison"
        );
        let names: Vec<_> = f
            .accesses
            .iter()
            .map(|a| (a.root, a.name.as_str()))
            .collect();
        assert!(names.contains(&(Root::Data, "amount")));
        assert!(names.contains(&(Root::Params, "limit")));
        assert!(names.contains(&(Root::Payload, "amount")));
        let first = &f.comparisons[0];
        assert_eq!(
            (first.access.name.as_str(), first.operator.as_str()),
            ("amount", "<")
        );
        assert_eq!(first.literal, Literal::String("15000".into()));
        assert_eq!((first.line, first.column), (1, 13));
        assert_eq!(f.comparisons[1].literal, Literal::Integer(3));
    }

    #[test]
    fn finds_calls_and_result_keys_per_function() {
        let sandbox = Sandbox::default();
        let ast = sandbox
            .compile_rules("fn a(data) { b(data) && data.x == 1 }\nfn b(data) { data.y }\n")
            .expect("compiles");
        let f = function_facts(&ast, "a");
        assert_eq!(
            f.calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(f.accesses.len(), 1, "{:?}", f.accesses);
        assert_eq!(function_facts(&ast, "b").accesses[0].name, "y");
        let action = sandbox
            .compile_expression("#{ sealed: true, seal_at: now }")
            .expect("compiles");
        let keys: Vec<_> = facts(&action)
            .result_keys
            .into_iter()
            .map(|k| k.name)
            .collect();
        assert_eq!(keys, ["sealed", "seal_at"]);
    }
}
