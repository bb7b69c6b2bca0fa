//! streamGenerateContent?alt=sse, and Vertex streamed function-call arguments.

use super::*;

// streamGenerateContent?alt=sse
// ---------------------------------------------------------------------------------------------

#[test]
fn stream_text_and_its_json_array_form_agree() {
    let rel = "gemini/stream_text.sse";
    let want = Want {
        id: "w1peaMz6INOvnvgPgYfPiQY",
        model: "gemini-2.0-flash-exp",
        text: Txt::Exact("The capital of France is Paris.\n"),
        // The last chunk's cumulative usage: promptTokenCount went 15 → 13 on the last chunk.
        usage: Some(u(13, 8, 0, 0, 0)),
        ..Want::default()
    };
    let (chunks, folded) = check_stream(rel, 3, &want);
    let texts: Vec<Option<&str>> = chunks.iter().map(ChatChunk::text).collect();
    assert_eq!(
        texts,
        [
            Some("The"),
            Some(" capital of France"),
            Some(" is Paris.\n")
        ]
    );
    // Usage on every chunk (Gemini repeats it).
    assert_usage("chunk 0", chunks[0].usage, u(15, 0, 0, 0, 0));
    assert_usage("chunk 1", chunks[1].usage, u(15, 0, 0, 0, 0));

    // The same chunks without ?alt=sse: a JSON array.
    let array_rel = "gemini/stream_text.json_array.json";
    let array_chunks = decode_stream_array(&read(array_rel)).expect("array decodes");
    assert_eq!(array_chunks, chunks, "{array_rel}: chunk by chunk");
    assert_eq!(
        fold(&array_chunks),
        folded,
        "{array_rel}: folded, usage included"
    );
    check_answer(array_rel, &fold(&array_chunks), &want);
    // …and the answer sent whole.
    let whole = merge_events(&sse_events(&read_str(rel)));
    let r = decode_response(whole.to_string().as_bytes()).expect("merged");
    assert_eq!(r, folded, "unstreamed form");
}

#[test]
fn stream_function_call_in_one_chunk() {
    let rel = "gemini/stream_function_call.sse";
    let (chunks, r) = check_stream(
        rel,
        1,
        &Want {
            id: "1lpeaMTxIpW1nvgP-O3vwQY",
            model: "gemini-2.0-flash",
            finish: FinishReason::ToolCalls,
            calls: &[call(
                Id::Generated,
                "get_capital",
                r#"{"country":"France"}"#,
            )],
            usage: Some(u(52, 5, 0, 0, 0)),
            ..Want::default()
        },
    );
    let tc = &chunks[0].choices[0].delta.tool_calls;
    assert_eq!(tc.len(), 1);
    assert_eq!(tc[0].index, Some(0));
    // One event is a whole GenerateContentResponse: decoded unstreamed, it is the same answer
    // with the same generated id.
    let data = read_str(rel);
    let unstreamed = decode_response(data.trim().strip_prefix("data: ").expect("data").as_bytes())
        .expect("decodes");
    assert_eq!(unstreamed, r);
    assert_eq!(unstreamed.tool_calls()[0].id, r.tool_calls()[0].id);
}

#[test]
fn stream_text_after_function_response() {
    check_stream(
        "gemini/stream_text_after_function_response.sse",
        2,
        &Want {
            id: "11peaI_ZJLq3nvgP0vasuQk",
            model: "gemini-2.0-flash",
            text: Txt::Exact("The temperature in Paris is 30°C.\n"),
            // promptTokenCount 169 on the first chunk, 79 on the last: the last one counts.
            usage: Some(u(79, 12, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn stream_thinking_with_signature_on_the_first_answer_chunk() {
    let rel = "gemini/stream_thinking.sse";
    let (chunks, _) = check_stream(
        rel,
        23,
        &Want {
            id: "beHBaJfEMIi-qtsP3769-Q8",
            model: "gemini-2.5-pro",
            text: Txt::Shape(
                "This is a great question! Safely crossing the street",
                "me a driver might not see you.",
                1938,
            ),
            reasoning: Some(Txt::Shape(
                "**Clarifying User Goals**\n\n",
                "circumstances or locations.\n\n\n",
                1575,
            )),
            blocks: &[(Thought::AllReasoning, "CiIB0e2Kb6Syj1a961Ef", 6152)],
            // 34 + 469 + 787 = 1290 total.
            usage: Some(u(34, 1256, 0, 0, 787)),
            ..Want::default()
        },
    );
    // Four thought chunks, then the first answer chunk carries the signature.
    for c in &chunks[..4] {
        assert!(c.reasoning().is_some() && c.text().is_none());
    }
    assert!(
        chunks[4]
            .text()
            .is_some_and(|t| t.starts_with("This is a great question!"))
    );
    assert!(chunks[4].choices[0].delta.thinking_signature.is_some());
    let signed = chunks
        .iter()
        .filter(|c| c.choices[0].delta.thinking_signature.is_some())
        .count();
    assert_eq!(signed, 1);
    // thoughtsTokenCount is cumulative: 68, 298, 552, 787, then steady.
    let reasoning: Vec<u64> = chunks[..5]
        .iter()
        .map(|c| c.usage.expect("usage").reasoning_tokens)
        .collect();
    assert_eq!(reasoning, [68, 298, 552, 787, 787]);
}

#[test]
fn genai_stream_thinking_summaries_without_signature() {
    let (chunks, _) = check_stream(
        "gemini/genai_stream_thinking.sse",
        6,
        &Want {
            id: "nlP5afrgJ6-I-sAPut_z2Ac",
            model: "gemini-2.5-flash",
            text: Txt::Shape(
                "The sky is blue because the Earth's atmosphere",
                "ing blue light across the sky.",
                216,
            ),
            reasoning: Some(Txt::Shape(
                "**Defining Atmospheric Color**\n\n",
                " blue light across the sky.\n\n\n",
                1604,
            )),
            usage: Some(u(12, 732, 0, 0, 697)),
            ..Want::default()
        },
    );
    let kinds: Vec<(bool, bool)> = chunks
        .iter()
        .map(|c| (c.reasoning().is_some(), c.text().is_some()))
        .collect();
    assert_eq!(
        kinds,
        [
            (true, false),
            (true, false),
            (true, false),
            (true, false),
            (false, true),
            (false, true)
        ]
    );
}

#[test]
fn genai_stream_thinking_then_function_call_with_id() {
    check_stream(
        "gemini/genai_stream_thinking_then_function_call.sse",
        8,
        &Want {
            id: "VYEPauj2Noe3jMcP_dvjoQg",
            model: "gemini-3.1-pro-preview",
            finish: FinishReason::ToolCalls,
            text: Txt::Shape(
                "To determine which of these three cities is in Africa",
                "ather for Cairo in Celsius. \n\n",
                440,
            ),
            reasoning: Some(Txt::Shape(
                "**Defining the Problem**\n\n",
                " but the first step is key.\n\n\n",
                322,
            )),
            calls: &[signed(
                Id::Vendor("u959pftr"),
                "get_weather",
                r#"{"country":"Egypt","unit":"C","city":"Cairo"}"#,
                "EpoICpcIAQw51sc78WQ2",
                1404,
            )],
            usage: Some(u(135, 362, 0, 0, 226)),
            ..Want::default()
        },
    );
}

#[test]
fn genai_stream_function_call_with_id_and_empty_text_part() {
    let (chunks, _) = check_stream(
        "gemini/genai_stream_function_call_with_id.sse",
        1,
        &Want {
            id: "QFiDas-DJqmSjrEPraSZsAQ",
            model: "gemini-3.7-flash",
            finish: FinishReason::ToolCalls,
            calls: &[signed(
                Id::Vendor("call_3091305"),
                "get_weather",
                r#"{"unit":"C","city":"Cairo"}"#,
                "EoQDCoEDARFNMg/tvHid",
                524,
            )],
            usage: Some(u(90, 98, 0, 0, 76)),
            ..Want::default()
        },
    );
    // The empty text part beside the call is no content.
    assert_eq!(chunks[0].text(), None);
}

#[test]
fn vercel_text_stream_signature_on_a_final_empty_part() {
    check_stream(
        "gemini/vercel_text_stream.sse",
        3,
        &Want {
            id: "bH6LaZW8Fp_3nsEPqtaSwQ4",
            model: "gemini-3-pro-preview",
            text: Txt::Exact("There are **3** \"r\"s in strawberry.\n\nst**r**awbe**rr**y"),
            blocks: &[(Thought::Empty, "EqsFCqgFAb4+9vvt", 916)],
            usage: Some(u(9, 208, 0, 0, 185)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_reasoning_stream() {
    check_stream(
        "gemini/vercel_reasoning_stream.sse",
        3,
        &Want {
            id: "dX6LadKVC7SZ28oPr9yJoQs",
            model: "gemini-3-pro-preview",
            text: Txt::Exact(
                "There are **3** \"r\"s in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.",
            ),
            blocks: &[(Thought::Empty, "Eo0HCooHAb4+9vut", 1216)],
            usage: Some(u(9, 285, 0, 0, 256)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_reasoning_gemini3_stream() {
    check_stream(
        "gemini/vercel_reasoning_gemini3_stream.sse",
        3,
        &Want {
            id: "M3iLaY-AI7zTxN8P3Piw4Qg",
            model: "gemini-3-pro-preview",
            text: Txt::Exact("There are **3** \"r\"s in strawberry.\n\nSt**r**awbe**rr**y"),
            blocks: &[(Thought::Empty, "EpAICo0IAb4+9vuk", 1392)],
            usage: Some(u(9, 325, 0, 0, 302)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_function_call_stream() {
    check_stream(
        "gemini/vercel_function_call_stream.sse",
        2,
        &Want {
            id: "b36LacjwM668nsEP2tbsgQQ",
            model: "gemini-3-pro-preview",
            finish: FinishReason::ToolCalls,
            calls: &[signed(
                Id::Generated,
                "weather",
                r#"{"location":"San Francisco"}"#,
                "EqUCCqICAb4+9vsh",
                396,
            )],
            usage: Some(u(29, 60, 0, 0, 45)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_function_call_gemini3_stream() {
    check_stream(
        "gemini/vercel_function_call_gemini3_stream.sse",
        2,
        &Want {
            id: "QHiLaa6LBrb8vdIPoNztsAg",
            model: "gemini-3-pro-preview",
            finish: FinishReason::ToolCalls,
            calls: &[signed(
                Id::Generated,
                "weather",
                r#"{"location":"San Francisco"}"#,
                "EpEgCo4gAb4+9vvW",
                5488,
            )],
            usage: Some(u(29, 819, 0, 0, 804)),
            ..Want::default()
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Vertex streamed function-call arguments (partialArgs)
// ---------------------------------------------------------------------------------------------

/// 2026-04-02T17:03:50.399550Z
const PARTIAL_ARGS_CREATED: u64 = 1_775_149_430;

#[test]
fn vertex_stream_partial_args_assemble_into_whole_calls() {
    let rel = "gemini/vertex_stream_function_call_partial_args.sse";
    let (chunks, _) = check_stream(
        rel,
        8,
        &Want {
            id: "dqHOab6xGLzWodAPkPuViA4",
            model: "gemini-3.1-pro-preview",
            created: PARTIAL_ARGS_CREATED,
            finish: FinishReason::ToolCalls,
            calls: &[
                signed(
                    Id::Generated,
                    "getWeather",
                    r#"{"location":"Boston"}"#,
                    "CiMBjz1rX25KieIB4d4A",
                    1032,
                ),
                call(
                    Id::Generated,
                    "getWeather",
                    r#"{"location":"San Francisco"}"#,
                ),
            ],
            usage: Some(u(26, 155, 0, 0, 132)),
            ..Want::default()
        },
    );
    // Each call is emitted whole when its closing `functionCall: {}` arrives.
    let with_calls: Vec<usize> = chunks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.has_content())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(with_calls, [3, 7]);
    // Vertex sends usageMetadata {trafficType} without counts until the end: no usage there.
    assert!(chunks[..7].iter().all(|c| c.usage.is_none()));
}

#[test]
fn vertex_stream_no_args_and_partial_args_calls() {
    check_stream(
        "gemini/vertex_stream_function_call_no_args_partial.sse",
        15,
        &Want {
            id: "_vr4aYiWEJnYodAPkujX0QM",
            model: "gemini-3-flash-preview",
            // 2026-05-04T20:01:02.264968Z
            created: 1_777_924_862,
            finish: FinishReason::ToolCalls,
            reasoning: Some(Txt::Shape(
                "**Processing User Requests**\n\n",
                " in parallel as instructed.\n\n\n",
                320,
            )),
            calls: &[
                signed(
                    Id::Generated,
                    "read_theme",
                    "{}",
                    "AY89a18a8/Loc2wl5oft",
                    1060,
                ),
                call(Id::Generated, "read_screen", r#"{"id":"A"}"#),
                call(Id::Generated, "read_screen", r#"{"id":"B"}"#),
                call(Id::Generated, "read_screen", r#"{"id":"C"}"#),
            ],
            usage: Some(u(249, 241, 0, 0, 183)),
            ..Want::default()
        },
    );
}

#[test]
fn vertex_stream_nested_partial_args() {
    let rel = "gemini/vertex_stream_function_call_partial_args_nested.sse";
    let (_, r) = check_stream(
        rel,
        76,
        &Want {
            id: "tjXVaYaxFISTq8YP_MWiyAo",
            model: "gemini-3.1-pro-preview",
            // 2026-04-07T16:49:58.333958Z
            created: 1_775_580_598,
            finish: FinishReason::ToolCalls,
            calls: &[signed(
                Id::Generated,
                "cookRecipe",
                r#"{"recipe":{"ingredients":[
                    {"amount":"16 oz","name":"Lasagna noodles"},
                    {"amount":"1 lb","name":"Ground beef"},
                    {"amount":"15 oz","name":"Ricotta cheese"},
                    {"amount":"3 cups","name":"Mozzarella cheese"},
                    {"amount":"1/2 cup","name":"Parmesan cheese"},
                    {"amount":"24 oz","name":"Tomato sauce"},
                    {"amount":"1","name":"Egg"},
                    {"amount":"2 cloves","name":"Garlic"},
                    {"amount":"1 tsp","name":"Salt"},
                    {"amount":"1/2 tsp","name":"Pepper"}],
                  "name":"Lasagna",
                  "steps":[
                    "Preheat oven to 375°F (190°C).",
                    "Cook lasagna noodles according to package directions, drain and set aside.",
                    "Brown ground beef with minced garlic in a skillet. Drain fat and stir in tomato sauce. Simmer for 10 minutes.",
                    "In a bowl, mix ricotta cheese, egg, salt, pepper, and Parmesan cheese.",
                    "In a 9x13 baking dish, spread a thin layer of meat sauce.",
                    "Layer noodles, ricotta mixture, mozzarella, and meat sauce. Repeat.",
                    "Top with remaining mozzarella cheese.",
                    "Cover with foil and bake for 25 minutes.",
                    "Remove foil and bake for another 25 minutes until golden.",
                    "Let stand for 15 minutes before serving."]}}"#,
                "CmIBjz1rX0OQAtrZnJaE",
                5832,
            )],
            usage: Some(u(31, 1710, 0, 0, 1026)),
            ..Want::default()
        },
    );
    // A string value streamed in pieces ("…drain and set aside" + ".") is joined.
    let args: Value = serde_json::from_str(&r.tool_calls()[0].function.arguments).expect("JSON");
    assert_eq!(
        args.pointer("/recipe/steps/1").and_then(Value::as_str),
        Some("Cook lasagna noodles according to package directions, drain and set aside.")
    );
}
